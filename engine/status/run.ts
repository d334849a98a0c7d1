import { randomUUID } from "node:crypto";
import { ConfigError, exitCodeOf, InterruptedError, messageOf, VrbError } from "../errors.js";
import type { BackupPolicy } from "../policy.js";
import { packageInfo } from "../package-info.js";
import { silentProgress, type Progress } from "../progress.js";
import { redact } from "../redact.js";
import { explainS3Error } from "../storage/s3/errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { applyRun, type CopyOutcomeFacts, type DrillFacts, type RunError, type RunKind, type RunOutcome, type SnapshotFacts } from "./record.js";
import { StatusStore } from "./status-store.js";

export interface RunTarget {
  /** The destination's store: the status object lives beside the snapshots. */
  store: ObjectStore;
  cluster: string;
  /** The policy's schedule.every (stored for readers without a policy). */
  schedule?: string;
  progress?: Progress;
}

/** What a run that returned (did not throw) says about itself; a drill or prune can return a failure. */
export interface RunFacts {
  ok?: boolean;
  exitCode?: number;
  error?: Omit<RunError, "at">;
  snapshot?: SnapshotFacts;
  drill?: DrillFacts;
  /** A scheduled drill's policy drill.every (readers without the policy judge drills by it). */
  drillEvery?: string;
  /** A backup's copies and how each went (listed in the primary's record). */
  copies?: CopyOutcomeFacts[];
}

/** The error part of the record, for any thrown value: safe to store (redacted), with a stage. */
export function runErrorOf(err: unknown, kind: RunKind, describe: (err: unknown) => string = messageOf): Omit<RunError, "at"> {
  const explained = explainS3Error(err);
  const stage = explained instanceof VrbError && explained.stage ? explained.stage : kind;
  const text = explained instanceof VrbError ? messageOf(explained) : describe(explained);
  return {
    stage,
    message: redact(text).slice(0, 2000),
    exitCode: exitCodeOf(explained),
    kind: explained instanceof Error ? explained.name : "Error",
  };
}

/**
 * Runs `fn` (one backup, prune, restore or drill) and records its outcome in the cluster's status
 * object, success or failure. Recording is best effort: a failure to record is a warning, and
 * `fn`'s own result or error (the very same object) is what the caller gets.
 */
export async function recordRun<T>(kind: RunKind, target: RunTarget, fn: () => Promise<T>, facts?: (result: T) => RunFacts): Promise<T> {
  const startedAt = new Date();
  const id = randomUUID();
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    const error = runErrorOf(err, kind, (e) => target.store.describeError(e));
    // The record lives in that bucket (container, directory): when the run found it missing, there is nowhere to write it.
    if (err instanceof ConfigError && (err.field === "destination.bucket" || err.stage === "destination")) {
      const where = new StatusStore(target.store).url(target.cluster);
      target.progress?.warn(`the ${kind} run is not recorded: the status object lives in ${where}, and the ${containerNoun(target.store)} does not exist`);
      throw err;
    }
    // A drill stopped by a signal (Ctrl-C, a CronJob's deadline) says nothing of the snapshot: the
    // run is recorded as interrupted, the drill history (status --check, retention) is left alone.
    const drill = kind === "drill" && !(err instanceof InterruptedError) ? { at: startedAt.toISOString(), ok: false } : undefined;
    await recordRunIn(target, kind, startedAt, { ok: false, exitCode: error.exitCode, error, drill }, id);
    throw err;
  }
  let described: RunFacts = {};
  try {
    described = facts?.(result) ?? {};
  } catch {
    // A report that cannot be summarised still counts as the run it is.
  }
  await recordRunIn(target, kind, startedAt, described, id);
  return result;
}

/**
 * Records a run that happened elsewhere in `target`'s status object: a backup's outcome in each
 * copy's own store (the copy's record then tells its own story when the primary is gone), or a
 * scheduled drill's verdict (engine/drill/scheduled.ts). Best effort, like recordRun.
 */
export async function recordRunIn(target: RunTarget, kind: RunKind, startedAt: Date, facts: RunFacts, id: string = randomUUID()): Promise<void> {
  const ok = facts.ok ?? true;
  await write(target, {
    id,
    kind,
    startedAt,
    toolVersion: packageInfo().version,
    schedule: target.schedule,
    durationMs: Date.now() - startedAt.getTime(),
    ok,
    exitCode: facts.exitCode ?? (ok ? 0 : 1),
    error: ok ? undefined : (facts.error ?? { stage: kind, message: `${kind} reported a failure`, exitCode: facts.exitCode ?? 1, kind: "Failure" }),
    snapshot: facts.snapshot,
    drill: facts.drill,
    drillEvery: facts.drillEvery,
    copies: facts.copies,
  });
}

async function write(target: RunTarget, outcome: RunOutcome): Promise<void> {
  const progress = target.progress ?? silentProgress;
  const store = new StatusStore(target.store);
  try {
    await store.update(target.cluster, (prev) => applyRun(prev, target.cluster, outcome));
  } catch (err) {
    progress.warn(`could not record the ${outcome.kind} run in ${store.url(target.cluster)}: ${redact(target.store.describeError(err))}`);
  }
}

/** What the store calls the thing that holds its objects, for messages. */
function containerNoun(store: ObjectStore): string {
  return store.type === "azure" ? "container" : store.type === "file" ? "directory" : "bucket";
}

/** Where a policy's runs are recorded: the destination's store (its prefix and encryption), the cluster and the schedule. */
export function runTargetFor(policy: BackupPolicy, store: ObjectStore, progress?: Progress): RunTarget {
  return {
    store,
    cluster: policy.cluster.name,
    schedule: policy.schedule.every,
    progress,
  };
}
