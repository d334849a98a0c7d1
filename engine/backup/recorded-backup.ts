import { ConfigError, ExitCode, messageOf, type VrbError } from "../errors.js";
import type { BackupPolicy } from "../policy.js";
import type { Progress } from "../progress.js";
import { drillAfterBackup, drillFailureOf, type ScheduledDrillOutcome } from "../drill/scheduled.js";
import { recordRun, recordRunIn, runErrorOf, runTargetFor, type RunFacts } from "../status/run.js";
import { destinationsOf } from "../storage/named-destination.js";
import { openStore } from "../storage/registry.js";
import type { LoginCredentials } from "../vault/login-settings.js";
import { withVaultSession } from "../vault/login.js";
import { copyFailureOf, runBackup, type BackupReport } from "./backup.js";

export interface RecordedBackupOptions {
  policy: BackupPolicy;
  /** A Vault token handed in; without it, the policy's cluster.auth (VAULT_TOKEN, a token file, a login). */
  token?: string;
  /** Login material for the policy's cluster.auth (AppRole role and secret ID, or a JWT). */
  credentials?: LoginCredentials;
  retries: number;
  leaderWaitMs?: number;
  stallTimeoutMs?: number;
  /** Overall deadline of one attempt (the Pulumi provider's; the CLI has signals instead). */
  deadlineMs?: number;
  signal?: AbortSignal;
  progress?: Progress;
}

/** A backup that returned: its report, the scheduled drill's verdict, and what makes the run fail although the snapshot is stored. */
export interface RecordedBackup {
  report: BackupReport;
  drill?: ScheduledDrillOutcome;
  /** The primary snapshot's URL. */
  url: string;
  /**
   * A failed copy under `onCopyFailure: fail`, then a failed drill: the run's failures, each
   * already in the status records. The snapshot itself is stored and good.
   */
  failures: VrbError[];
}

/**
 * One backup as a scheduled run takes it (`vrb backup`, the VaultSnapshot provider): the backup
 * under a Vault session (a login token is renewed while it runs and revoked after, also on
 * failure), its outcome recorded in the status object of the primary and of each copy (success or
 * failure, docs/status.md), then the policy's drill when one is due. Throws what the backup threw.
 */
export async function runRecordedBackup(opts: RecordedBackupOptions): Promise<RecordedBackup> {
  const { policy, progress, signal } = opts;
  const store = await openStore(policy.destination, { onWaiting: (m) => progress?.warn(m) });
  const startedAt = new Date();
  const report = await recordRun(
    "backup",
    runTargetFor(policy, store, progress),
    () =>
      withVaultSession({ cluster: policy.cluster, token: opts.token || undefined, credentials: opts.credentials, progress }, (session) =>
        runBackup({
          policy,
          token: session.token,
          store,
          progress,
          retries: opts.retries,
          leaderWaitMs: opts.leaderWaitMs,
          stallTimeoutMs: opts.stallTimeoutMs,
          deadlineMs: opts.deadlineMs,
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
    // After the backup's lease is released: the next backup need not wait for the drill.
    drill = await drillAfterBackup({ policy, store, snapshot: { key: report.key, bytes: report.bytes, vault: report.vault }, progress, signal });
  } finally {
    store.close();
  }
  const url = store.url(report.key);
  const failures = [copyFailureOf(report, policy), drillFailureOf(drill, url)].filter((f) => f !== undefined);
  return { report, drill, url, failures };
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
