import type { Command } from "commander";
import {
  copyFailureOf,
  destinationsOf,
  ExitCode,
  messageOf,
  recordRunIn,
  redact,
  ConfigError,
  runErrorOf,
  type BackupPolicy,
  type BackupReport,
  type RunFacts,
  DEFAULT_BACKUP_RETRIES,
  DEFAULT_LEADER_WAIT_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  drillAfterBackup,
  drillFailureOf,
  formatBytes,
  type ScheduledDrillOutcome,
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
        const startedAt = new Date();
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
          (r) => backupFacts(r, policy),
        ).catch(async (err: unknown) => {
          store.close();
          // A destination found missing stopped the run before anything: nothing to record.
          if (!(err instanceof ConfigError)) await recordInCopies(policy, startedAt, undefined, err);
          throw err;
        });
        let drill: ScheduledDrillOutcome | undefined;
        try {
          await recordInCopies(policy, startedAt, report);
          // Policy drill: the snapshot just stored, restored into a throwaway node when a drill is due.
          // After the backup's lease is released: the next backup need not wait for the drill.
          drill = await drillAfterBackup({ policy, store, snapshot: { key: report.key, bytes: report.bytes, vault: report.vault }, progress, signal });
        } finally {
          store.close();
        }
        // onCopyFailure fail, or a failed drill: the report is printed as it is, and the exit status says what is wrong.
        const failures = [copyFailureOf(report, policy), drillFailureOf(drill, store.url(report.key))].filter((f) => f !== undefined);
        for (const f of failures) process.stderr.write(redact(`vrb: error [stage: ${f.stage}]: ${f.message}`) + "\n");
        const failure = failures[0];
        const reported = drill ? { ...report, drill } : report;
        if (o.json) {
          printJson(failure ? { ...reported, ok: false, exitCode: ExitCode.failed, error: { message: failure.message, stage: failure.stage, kind: failure.name } } : reported);
          return failure ? ExitCode.failed : undefined;
        }
        const secs = (report.durationsMs.total ?? 0) / 1000;
        printText(
          [
            store.url(report.key),
            `  ${formatBytes(report.bytes)} in ${secs.toFixed(1)}s, sha256 ${report.sha256}`,
            `  raft index ${report.raft.index}, term ${report.raft.term}, leader ${report.vault.leaderAddr} (version ${report.vault.version})`,
            report.lock ? `  locked ${report.lock.mode} until ${report.lock.until}` : "  not locked (no objectLock in the policy)",
            ...report.destinations.slice(1).map((d) => (d.ok ? `  copy '${d.name}': ok ${d.url}` : `  copy '${d.name}': FAILED at stage ${d.stage}: ${d.error}`)),
            ...report.warnings.map((w) => `  warning: ${w}`),
            ...(drill ? [describeDrill(drill)] : []),
          ].join("\n"),
        );
        return failure ? ExitCode.failed : undefined;
      }),
    );
}

/** The backup's line about its scheduled drill (policy drill). */
function describeDrill(d: ScheduledDrillOutcome): string {
  if (d.state === "passed") return `  drill: PASSED, RTO ${d.rtoSeconds!.toFixed(1)}s: ${d.reason}`;
  if (d.state === "failed") return `  drill: FAILED: ${d.reason}`;
  return d.state === "skipped" ? `  drill: SKIPPED: ${d.reason}` : `  drill: not due: ${d.reason}`;
}

/** The primary's status record: the snapshot, each copy's outcome, and with onCopyFailure fail a failed copy as the run's failure. */
function backupFacts(r: BackupReport, policy: BackupPolicy): RunFacts {
  const failure = copyFailureOf(r, policy);
  return {
    snapshot: { key: r.key, takenAt: r.takenAt, bytes: r.bytes, raftIndex: r.raft.index },
    copies: r.destinations
      .slice(1)
      .map((d) =>
        d.ok ? { name: d.name, ok: true, key: d.key } : { name: d.name, ok: false, error: { stage: d.stage, message: d.error, exitCode: ExitCode.failed, kind: "CopyFailed" } },
      ),
    ...(failure ? { ok: false, exitCode: ExitCode.failed, error: runErrorOf(failure, "backup") } : {}),
  };
}

/** Each copy's own status record gets the run too: ok with its snapshot, or failed with why. */
async function recordInCopies(policy: BackupPolicy, startedAt: Date, report: BackupReport | undefined, err?: unknown): Promise<void> {
  for (const named of destinationsOf(policy).slice(1)) {
    const outcome = report?.destinations.find((d) => d.name === named.name);
    let facts: RunFacts;
    if (outcome?.ok) facts = { snapshot: { key: outcome.key, takenAt: report!.takenAt, bytes: outcome.bytes, raftIndex: report!.raft.index } };
    else if (outcome) facts = { ok: false, error: { stage: outcome.stage, message: outcome.error, exitCode: ExitCode.failed, kind: "CopyFailed" } };
    else facts = { ok: false, error: runErrorOf(err ?? new Error(messageOf(err)), "backup") };
    try {
      const copyStore = await openStore(named.destination, { name: named.name });
      try {
        await recordRunIn({ store: copyStore, cluster: policy.cluster.name, schedule: policy.schedule.every }, "backup", startedAt, facts);
      } finally {
        copyStore.close();
      }
    } catch {
      // Best effort, as every status record: the report already says how the copy went.
    }
  }
}
