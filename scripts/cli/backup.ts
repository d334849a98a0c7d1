import type { Command } from "commander";
import {
  DEFAULT_BACKUP_RETRIES,
  DEFAULT_LEADER_WAIT_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  formatBytes,
  openStore,
  recordRun,
  runBackup,
  runTargetFor,
  withVaultSession,
} from "../../engine/index.js";
import { printJson, printText, progressFor, runInterruptible } from "./common.js";
import { addAuthFlags, addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";

interface BackupFlags extends PolicyFlags {
  json?: boolean;
  retries?: number;
  leaderWait?: number;
  stallTimeout?: number;
}

export function registerBackup(program: Command): void {
  const cmd = program.command("backup").description("take a snapshot of the cluster and store it, verified and locked, in the destination store (manifest written last)");
  addAuthFlags(addPolicyFlags(cmd))
    .option(
      "--retries <n>",
      `re-run the whole backup this many times after a failure, with jittered backoff (the active node is looked up again; default policy backup.retries, else ${DEFAULT_BACKUP_RETRIES})`,
      intFlag("--retries", 0),
    )
    .option(
      "--leader-wait <seconds>",
      `wait this long for an active node while the cluster elects a leader (default policy backup.leaderWaitSeconds, else ${DEFAULT_LEADER_WAIT_MS / 1000})`,
      intFlag("--leader-wait", 0),
    )
    .option(
      "--stall-timeout <seconds>",
      `abort when neither Vault nor the store moves a byte for this long (default ${DEFAULT_STALL_TIMEOUT_MS / 1000})`,
      intFlag("--stall-timeout", 1),
    )
    .option("--json", "print one JSON report on stdout")
    .action(async (o: BackupFlags) =>
      // Ctrl-C or a pod's SIGTERM stops the backup cleanly: its upload aborted, no manifest, exit 130/143.
      runInterruptible(o, async (signal) => {
        const policy = policyFromCli(o);
        const progress = progressFor(o);
        // One store for the backup and its record in the cluster's status object (docs/status.md),
        // written on success and on failure.
        const store = await openStore(policy.destination);
        const report = await recordRun(
          "backup",
          runTargetFor(policy, store, progress),
          // A login token is renewed while the backup runs and revoked when it ends, also on failure.
          () =>
            withVaultSession({ cluster: policy.cluster, progress }, (session) =>
              runBackup({
                policy,
                token: session.token,
                store,
                progress,
                retries: o.retries ?? policy.backup?.retries ?? DEFAULT_BACKUP_RETRIES,
                leaderWaitMs: o.leaderWait !== undefined ? o.leaderWait * 1000 : undefined,
                stallTimeoutMs: o.stallTimeout ? o.stallTimeout * 1000 : undefined,
                signal,
              }),
            ),
          (r) => ({ snapshot: { key: r.key, takenAt: r.takenAt, bytes: r.bytes, raftIndex: r.raft.index } }),
        ).finally(() => store.close());
        if (o.json) return printJson(report);
        const secs = (report.durationsMs.total ?? 0) / 1000;
        printText(
          [
            store.url(report.key),
            `  ${formatBytes(report.bytes)} in ${secs.toFixed(1)}s, sha256 ${report.sha256}`,
            `  raft index ${report.raft.index}, term ${report.raft.term}, leader ${report.vault.leaderAddr} (version ${report.vault.version})`,
            report.lock ? `  locked ${report.lock.mode} until ${report.lock.until}` : "  not locked (no objectLock in the policy)",
            ...report.warnings.map((w) => `  warning: ${w}`),
          ].join("\n"),
        );
      }),
    );
}
