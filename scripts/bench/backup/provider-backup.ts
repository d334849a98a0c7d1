// (p) the VaultSnapshot provider's backup, in a Node started as Pulumi's dynamic-provider host is
// (no flags): `in-host` runs the engine's runRecordedBackup in this Node, as the provider did before
// it had a process of its own; `own-process` runs it through runRecordedBackupInProcess, as the
// provider does now (a child Node with BOUNDED_HEAP_FLAGS). The policy comes from the local
// environment's variables; GNU time around this process counts the child's CPU and memory too.
import { runRecordedBackup, runRecordedBackupInProcess, validatePolicy } from "../../../engine/index.js";

async function main(mode: string, cluster: string): Promise<void> {
  const env = process.env;
  const policy = validatePolicy(
    {
      cluster: { name: cluster, nodes: (env.VRB_NODES ?? "").split(",") },
      destination: { bucket: env.VRB_BUCKET, prefix: "bench/", endpoint: env.AWS_ENDPOINT_URL_S3, region: env.AWS_REGION, forcePathStyle: true },
      schedule: { every: "6h" },
    },
    "bench provider policy",
  );
  const options = { policy, retries: 0 };
  if (mode === "in-host") await runRecordedBackup(options);
  else if (mode === "own-process") await runRecordedBackupInProcess({ ...options, progressPrefix: "bench" });
  else throw new Error(`mode ${mode}: use in-host or own-process`);
}

await main(process.argv[2] ?? "", process.argv[3] ?? "bench-provider");
