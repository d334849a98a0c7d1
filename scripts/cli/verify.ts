import type { Command } from "commander";
import { DEFAULT_STALL_TIMEOUT_MS, IntegrityError, SnapshotStore, verifyStoredSnapshot, formatBytes, type RemoteSnapshot, type VerifyReport } from "../../engine/index.js";
import { destinationOfReport, printJson, printText, progressFor, runInterruptible, withPolicyStore } from "./common.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";
import { addDestinationFlag, addPolicyFlags, intFlag, type PolicyFlags } from "./options.js";
import { policyForRef, resolveGood } from "./snapshot-ref.js";
import { addUrlRefFlags, remoteFromRef, type UrlRefFlags } from "./url-ref.js";

interface VerifyFlags extends PolicyFlags, UrlRefFlags, IdentityFlags {
  json?: boolean;
  stallTimeout?: number;
}

export function registerVerify(program: Command): void {
  const cmd = program
    .command("verify <ref>")
    .description(
      "re-download a snapshot (s3://BUCKET/KEY, a key, 'latest', or a pre-signed https:// URL with --sha256/--manifest-url) and check SHA-256, size, raft index and the archive's SHA256SUMS; exit 3 on mismatch",
    );
  addIdentityFlag(addUrlRefFlags(addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))))
    .option("--json", "print one JSON report on stdout")
    .option("--stall-timeout <seconds>", `abort when S3 sends no byte of the snapshot for this long (default ${DEFAULT_STALL_TIMEOUT_MS / 1000})`, intFlag("--stall-timeout", 1))
    .action(async (ref: string, o: VerifyFlags) =>
      runInterruptible(o, async (signal) => {
        const remote = remoteFromRef(ref, o, o.cluster ?? process.env.VRB_CLUSTER);
        if (remote) return verifyRemote(remote, o, signal);
        // A store URL (s3://...) names its bucket and cluster itself; no policy needed for those.
        const policy = policyForRef(ref, o);
        const identities = await identitiesFromFlags(o);
        return withPolicyStore(
          policy,
          async (objects) => {
            const store = new SnapshotStore(objects);
            // 'latest' is the newest GOOD snapshot: a damaged newer one is not skipped in silence.
            const { snapshot, damagedNewer: skipped } =
              ref === "latest" ? await store.latest(policy.cluster.name, { signal }) : { snapshot: await resolveGood(store, ref, policy.cluster.name, "verify"), damagedNewer: [] };
            const progress = progressFor(o);
            for (const d of skipped) progress.warn(`the newer snapshot ${d.url} is damaged (${d.problem ?? "does not match its manifest"}); 'latest' skipped it`);
            progress.info(`verifying ${snapshot.url}`);
            const report = await verifyStoredSnapshot(store, snapshot, {
              progress,
              stallTimeoutMs: o.stallTimeout ? o.stallTimeout * 1000 : undefined,
              signal,
              identities,
            });
            if (skipped.length) {
              // The older snapshot is fine, but the newest backup is unusable: that must not pass as "ok".
              throw new IntegrityError(
                `${report.url} verified OK, but 'latest' had to skip ${skipped.length} newer damaged snapshot(s): ` +
                  `${skipped.map((d) => `${d.url} (${d.problem ?? "does not match its manifest"})`).join("; ")}. ` +
                  `Find out what changed them (vrb verify <key>), then take a new backup.`,
                { stage: "verify" },
              );
            }
            if (o.json) return printJson({ ...report, destination: destinationOfReport(objects) });
            printText(
              `OK ${report.url}\n  ${formatBytes(report.bytes)}, sha256 ${report.sha256}\n` +
                (report.encryption && !report.encryption.decrypted
                  ? `  encrypted (${report.encryption.format}): the stored object matches its manifest; give --identity to decrypt it and check the archive`
                  : `  raft index ${report.raft.index}, term ${report.raft.term}; archive entries checked: ${report.archive.checked.join(", ")}` +
                    (report.encryption ? `\n  ${decryptedLine(report.encryption)}` : "")),
            );
          },
          o.destination,
        );
      }),
    );
}

/** What the decryption proved: every chunk (age) or the whole message (OpenPGP) authenticated, and its size. */
function decryptedLine(e: NonNullable<VerifyReport["encryption"]>): string {
  const plain = e.plaintext;
  return `decrypted (${e.format}) and authenticated: ${plain ? formatBytes(plain.bytes) : "?"}${plain?.sha256 ? `, plaintext sha256 ${plain.sha256}` : ""}`;
}

/** verify of a pre-signed URL ref: one download, proven against --sha256 or the manifest URL's manifest. */
async function verifyRemote(remote: RemoteSnapshot, o: VerifyFlags, signal: AbortSignal): Promise<void> {
  const progress = progressFor(o);
  progress.info(`verifying ${remote.label}`);
  const snapshot = await remote.resolve(progress);
  const report = await remote.download(snapshot, { progress, identities: await identitiesFromFlags(o), signal });
  if (o.json) return printJson(report);
  printText(
    `OK ${remote.label}\n  ${formatBytes(report.bytes)}, sha256 ${report.sha256}\n` +
      `  raft index ${report.raft.index}, term ${report.raft.term}; archive entries checked: ${report.archive.checked.join(", ")}` +
      (report.encryption?.decrypted ? `\n  ${decryptedLine(report.encryption)}` : ""),
  );
}
