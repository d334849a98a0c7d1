import type { Command } from "commander";
import { DEFAULT_STALL_TIMEOUT_MS, exportSnapshot, formatBytes, parseSnapshotKey, parseSnapshotRef, SnapshotStore } from "../../engine/index.js";
import { destinationOfReport, printJson, printText, progressFor, runInterruptible, withPolicyStore } from "./common.js";
import { addDestinationFlag, addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";

interface ExportFlags extends PolicyFlags {
  toUrl: string;
  manifestUrl?: string;
  json?: boolean;
  stallTimeout?: number;
}

/** Policy of the commands that read one stored snapshot: an s3:// reference names its own bucket and cluster. */
export function snapshotPolicy(ref: string, o: PolicyFlags) {
  const parsed = parseSnapshotRef(ref, "placeholder-bucket");
  const flags: PolicyFlags = { ...o };
  if (ref.startsWith("s3://") && "key" in parsed) {
    flags.bucket ??= parsed.bucket;
    flags.cluster ??= parseSnapshotKey(parsed.key)?.cluster ?? process.env.VRB_CLUSTER ?? "unknown";
  }
  return policyFromCli(flags, process.env, { requireNodes: false });
}

export function registerExport(program: Command): void {
  const cmd = program
    .command("export <ref>")
    .description("stream a snapshot (s3://BUCKET/KEY, a key, or 'latest') to a pre-signed PUT URL, proving SHA-256 and archive on the way; then its manifest");
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
    .requiredOption("--to-url <url>", "pre-signed PUT URL for the snapshot (a secret: never printed in full)")
    .option("--manifest-url <url>", "pre-signed PUT URL for its manifest (written after the snapshot)")
    .option("--json", "print one JSON report on stdout")
    .option("--stall-timeout <seconds>", `abort when nothing moves for this long (default ${DEFAULT_STALL_TIMEOUT_MS / 1000})`, intFlag("--stall-timeout", 1))
    .action(async (ref: string, o: ExportFlags) =>
      runInterruptible(o, async (signal) => {
        const policy = snapshotPolicy(ref, o);
        return withPolicyStore(
          policy,
          async (objects) => {
            const store = new SnapshotStore(objects);
            const snapshot = await store.resolve(ref, policy.cluster.name);
            const report = await exportSnapshot({
              store,
              snapshot,
              toUrl: o.toUrl,
              manifestUrl: o.manifestUrl,
              progress: progressFor(o),
              stallTimeoutMs: o.stallTimeout ? o.stallTimeout * 1000 : undefined,
              signal,
            });
            if (o.json) return printJson({ ...report, destination: destinationOfReport(objects) });
            printText(
              `OK exported ${report.url}\n  to ${report.to}${report.manifestTo ? `\n  manifest to ${report.manifestTo}` : ""}\n` +
                `  ${formatBytes(report.bytes)}, sha256 ${report.sha256}`,
            );
          },
          o.destination,
        );
      }),
    );
}
