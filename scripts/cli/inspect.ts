import type { Command } from "commander";
import {
  ConfigError,
  describeProduct,
  formatBytes,
  inspectSnapshotFile,
  inspectStoredSnapshot,
  readMountTable,
  SnapshotStore,
  tokenFromEnv,
  VaultClient,
  registerSecret,
  type InspectReport,
  type MountTableEntry,
} from "../../engine/index.js";
import { destinationOfReport, printJson, printText, progressFor, runCommand, withPolicyStore, type DestinationOfReport } from "./common.js";
import { addDestinationFlag, addPolicyFlags, type PolicyFlags } from "./options.js";
import { isSnapshotFile, policyForRef } from "./snapshot-ref.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";

interface InspectFlags extends PolicyFlags, IdentityFlags {
  json?: boolean;
  mapFromCluster?: boolean;
}

/** The live cluster's mount table (VAULT_ADDR / --vault-addr, VAULT_TOKEN): names the mounts of a snapshot file. */
async function liveMountTable(o: InspectFlags, env: NodeJS.ProcessEnv): Promise<{ entries: MountTableEntry[]; warnings: string[] }> {
  const addr = o.vaultAddr?.[0] ?? (env.VAULT_ADDR || env.BAO_ADDR);
  if (!addr) throw new ConfigError("--map-from-cluster needs a Vault address: pass --vault-addr URL or set VAULT_ADDR", { field: "--vault-addr" });
  const token = tokenFromEnv(env);
  if (!token) throw new ConfigError("--map-from-cluster needs a token that may read sys/mounts and sys/auth: set VAULT_TOKEN", { field: "VAULT_TOKEN" });
  registerSecret(token);
  const client = new VaultClient({ addr, token, caCert: env.VAULT_CACERT || env.BAO_CACERT || undefined, retries: 2 });
  try {
    return await readMountTable(client);
  } finally {
    await client.close();
  }
}

/** The text form: meta, totals, prefixes, mounts (path and type when known). */
export function inspectText(r: InspectReport): string {
  const meta = [`raft index ${r.meta.index}, term ${r.meta.term}`, `snapshot format ${r.meta.version}`];
  if (r.meta.vault) meta.push(r.meta.product ? describeProduct(r.meta.product, r.meta.vault) : `Vault ${r.meta.vault}`);
  if (r.meta.takenAt) meta.push(`taken ${r.meta.takenAt}`);
  const row = (name: string, keys: number, bytes: number) => `    ${name.padEnd(48)} ${String(keys).padStart(9)} keys ${formatBytes(bytes).padStart(10)}`;
  return [
    r.source,
    `  ${meta.join(", ")}`,
    ...(r.suspect ? [`  SUSPECT: ${r.suspect.reason}`] : []),
    `  ${r.totalKeys} keys, ${formatBytes(r.totalBytes)}`,
    "  by prefix:",
    ...r.prefixes.map((p) => row(p.prefix, p.keys, p.bytes)),
    `  by mount (${r.mountPaths === "none" ? "uuids only: no mount table; --map-from-cluster names them from a live cluster" : `paths from the ${r.mountPaths}`}):`,
    ...r.mounts.map((m) => row(`${m.kind} ${m.path ? `${m.path} (${m.type}) ` : ""}${m.uuid}`, m.keys, m.bytes)),
  ].join("\n");
}

export function registerInspect(program: Command): void {
  const cmd = program
    .command("inspect <ref>")
    .description(
      "what a snapshot holds, read without Vault's keys: raft meta, keys and bytes per prefix and per mount (ref: 'latest', s3://BUCKET/KEY, a key, or a file; a client-side encrypted one needs --identity)",
    );
  addIdentityFlag(addDestinationFlag(addPolicyFlags(cmd)))
    .option("--map-from-cluster", "name the mounts of a snapshot file from the live cluster's mount table (VAULT_ADDR, VAULT_TOKEN)")
    .option("--json", "print one JSON report on stdout")
    .action(async (ref: string, o: InspectFlags) =>
      runCommand(o, async () => {
        const progress = progressFor(o);
        const identities = await identitiesFromFlags(o);
        const table = o.mapFromCluster ? await liveMountTable(o, process.env) : undefined;
        for (const w of table?.warnings ?? []) progress.warn(w);
        let report: InspectReport;
        let destination: DestinationOfReport | undefined;
        if (isSnapshotFile(ref)) {
          report = await inspectSnapshotFile(ref, { mountTable: table?.entries, progress });
        } else {
          const policy = policyForRef(ref, o);
          report = await withPolicyStore(
            policy,
            async (objects) => {
              destination = destinationOfReport(objects);
              const store = new SnapshotStore(objects);
              return inspectStoredSnapshot(store, await store.resolve(ref, policy.cluster.name), { mountTable: table?.entries, progress, identities });
            },
            o.destination,
          );
        }
        if (o.json) return printJson(destination ? { ...report, destination } : report);
        printText(inspectText(report));
      }),
    );
}
