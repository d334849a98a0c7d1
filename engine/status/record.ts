import { z } from "zod";
import { verdictOf } from "./drills.js";

/**
 * The status record of one cluster (`<prefix><cluster>/vrb-status.json`): what the last runs of
 * each operation did. Pure data and pure functions; reading and writing it is store.ts's job.
 */

export const RUN_KINDS = ["backup", "prune", "restore", "drill"] as const;
export type RunKind = (typeof RUN_KINDS)[number];

/** Name of the status object inside the cluster's key prefix. */
export const STATUS_OBJECT_NAME = "vrb-status.json";
/** Runs kept in `history` (newest first): enough to see a pattern, small enough to rewrite on every run. */
export const HISTORY_LIMIT = 50;

const runError = z.object({
  at: z.string(),
  stage: z.string(),
  message: z.string(),
  exitCode: z.number().int(),
  kind: z.string(),
});
export type RunError = z.infer<typeof runError>;

const operationStatus = z.object({
  /** Start of the newest run of this operation. */
  lastAttempt: z.string(),
  lastAttemptOk: z.boolean(),
  lastSuccess: z.string().optional(),
  /** Failed runs since the last success (0 after a success). */
  consecutiveFailures: z.number().int().min(0),
  /** Every run recorded, ever: two concurrent runs both counting proves no update was lost. */
  runs: z.number().int().min(0),
  lastDurationMs: z.number().min(0),
  lastError: runError.optional(),
});
export type OperationStatus = z.infer<typeof operationStatus>;

const snapshotFacts = z.object({ key: z.string(), takenAt: z.string(), bytes: z.number(), raftIndex: z.number() });
export type SnapshotFacts = z.infer<typeof snapshotFacts>;

const drillFacts = z.object({
  at: z.string(),
  ok: z.boolean(),
  rtoSeconds: z.number().optional(),
  /** The snapshot's URL (s3://…, file://…). */
  snapshot: z.string().optional(),
  /** The snapshot's key: what `drills`, `vrb list` and retention look it up by. */
  key: z.string().optional(),
  problems: z.array(z.string()).optional(),
  /** Set when the drill could not run here (no binary, no disk space, a keys file missing): why. Never a pass. */
  skipped: z.string().optional(),
});
export type DrillFacts = z.infer<typeof drillFacts>;

/** One snapshot's drill verdict, in the record's `drills` (by snapshot key): the snapshot's manifest-side flag. */
const drillVerdict = z.object({
  at: z.string(),
  ok: z.boolean(),
  rtoSeconds: z.number().optional(),
  problems: z.array(z.string()).optional(),
  skipped: z.string().optional(),
});
export type DrillVerdict = z.infer<typeof drillVerdict>;
/** Verdicts kept in `drills`: at a weekly drill, two years; the newest passing one is always kept. */
export const DRILL_VERDICTS_LIMIT = 100;

const historyEntry = z.object({ id: z.string(), kind: z.enum(RUN_KINDS), at: z.string(), ok: z.boolean(), exitCode: z.number().int(), toolVersion: z.string() });
export type HistoryEntry = z.infer<typeof historyEntry>;

/** One off-site copy (policy `copies`) as the primary's backups last wrote it. */
const copyStatus = z.object({
  lastAttempt: z.string(),
  lastAttemptOk: z.boolean(),
  lastSuccess: z.string().optional(),
  consecutiveFailures: z.number().int().min(0),
  /** The copy's snapshot key of its last success. */
  key: z.string().optional(),
  lastError: runError.optional(),
});
export type CopyStatus = z.infer<typeof copyStatus>;

/** The cluster's backup lease (engine/backup/lease.ts): one backup at a time. Absent: free. */
const backupLease = z.object({
  run: z.string(),
  host: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  expiresAt: z.string(),
});
export type BackupLeaseFacts = z.infer<typeof backupLease>;

export const statusRecordSchema = z.object({
  schema: z.literal(1),
  cluster: z.string(),
  updatedAt: z.string(),
  /** vrb version of the run that wrote this record last. */
  toolVersion: z.string(),
  /** schedule.every of the last backup's policy: the RPO yardstick when the reader has no policy. */
  schedule: z.string().optional(),
  operations: z.object({ backup: operationStatus.optional(), prune: operationStatus.optional(), restore: operationStatus.optional(), drill: operationStatus.optional() }),
  newestGood: snapshotFacts.optional(),
  /** The newest drill that ran (passed or failed); a skipped drill leaves it as it was. */
  lastDrill: drillFacts.optional(),
  /** The newest drill that passed: what "no passing drill within drill.every" is measured from. */
  lastPassedDrill: drillFacts.optional(),
  /** The newest drill that could not run, and why. */
  lastSkippedDrill: drillFacts.optional(),
  /** Per snapshot key: its drill verdict (failed ones stay listed and restorable; retention keeps the newest passed one). */
  drills: z.record(z.string(), drillVerdict).optional(),
  /** drill.every of the last scheduled drill's policy: the window `status --check` uses when the reader has no policy. */
  drillEvery: z.string().optional(),
  history: z.array(historyEntry),
  /** Per copy name: the copies' outcomes of the backups recorded here (the primary's record only). */
  copies: z.record(z.string(), copyStatus).optional(),
  /** Held while a backup runs (readers of older versions drop it: it then only expires sooner). */
  backupLease: backupLease.optional(),
});
export type StatusRecord = z.infer<typeof statusRecordSchema>;

/** What one finished run contributes to the record. */
export interface RunOutcome {
  id: string;
  kind: RunKind;
  startedAt: Date;
  durationMs: number;
  ok: boolean;
  exitCode: number;
  error?: Omit<RunError, "at">;
  /** A backup's new snapshot. */
  snapshot?: SnapshotFacts;
  drill?: DrillFacts;
  /** The policy's drill.every (a scheduled drill's run). */
  drillEvery?: string;
  /** A backup's copies: each one's outcome. */
  copies?: CopyOutcomeFacts[];
  schedule?: string;
  toolVersion: string;
}

/** What a backup says about one of its copies. */
export interface CopyOutcomeFacts {
  name: string;
  ok: boolean;
  key?: string;
  error?: Omit<RunError, "at">;
}

function applyCopies(prev: StatusRecord["copies"], at: string, copies: CopyOutcomeFacts[] | undefined): StatusRecord["copies"] {
  if (!copies?.length) return prev;
  const next = { ...prev };
  for (const c of copies) {
    const before = prev?.[c.name];
    next[c.name] = {
      lastAttempt: at,
      lastAttemptOk: c.ok,
      lastSuccess: c.ok ? at : before?.lastSuccess,
      consecutiveFailures: c.ok ? 0 : (before?.consecutiveFailures ?? 0) + 1,
      key: c.ok ? c.key : before?.key,
      lastError: c.ok ? before?.lastError : c.error && { at, ...c.error },
    };
  }
  return next;
}

/** The drill fields after one drill: a skip is kept apart, so it never stands for a pass nor hides a failure. */
function applyDrill(base: StatusRecord, drill: DrillFacts | undefined): Pick<StatusRecord, "lastDrill" | "lastPassedDrill" | "lastSkippedDrill" | "drills"> {
  const kept = { lastDrill: base.lastDrill, lastPassedDrill: base.lastPassedDrill, lastSkippedDrill: base.lastSkippedDrill, drills: base.drills };
  if (!drill) return kept;
  const next = { ...kept };
  if (drill.skipped) next.lastSkippedDrill = drill;
  else {
    next.lastDrill = drill;
    if (drill.ok) next.lastPassedDrill = drill;
  }
  if (drill.key) {
    const before = base.drills?.[drill.key];
    // A skip says nothing about a snapshot already drilled: its pass or failure stands.
    if (!(drill.skipped && before && !before.skipped)) {
      next.drills = trimVerdicts({ ...base.drills, [drill.key]: verdictOf(drill) });
    }
  }
  return next;
}

/** The newest DRILL_VERDICTS_LIMIT verdicts, and always the newest passing one (retention keeps its snapshot). */
export function trimVerdicts(drills: Record<string, DrillVerdict>): Record<string, DrillVerdict> {
  const entries = Object.entries(drills).sort(([, a], [, b]) => Date.parse(b.at) - Date.parse(a.at));
  if (entries.length <= DRILL_VERDICTS_LIMIT) return drills;
  const kept = entries.slice(0, DRILL_VERDICTS_LIMIT);
  const passed = entries.find(([, v]) => v.ok);
  if (passed && !kept.includes(passed)) kept[kept.length - 1] = passed;
  return Object.fromEntries(kept);
}

export function emptyRecord(cluster: string, toolVersion: string): StatusRecord {
  return { schema: 1, cluster, updatedAt: new Date(0).toISOString(), toolVersion, operations: {}, history: [] };
}

/** The record after `run` (a pure function, so a conditional write can re-apply it to a newer record). */
export function applyRun(prev: StatusRecord | undefined, cluster: string, run: RunOutcome): StatusRecord {
  const base = prev ?? emptyRecord(cluster, run.toolVersion);
  const at = run.startedAt.toISOString();
  const before = base.operations[run.kind];
  const op: OperationStatus = {
    lastAttempt: at,
    lastAttemptOk: run.ok,
    lastSuccess: run.ok ? at : before?.lastSuccess,
    consecutiveFailures: run.ok ? 0 : (before?.consecutiveFailures ?? 0) + 1,
    runs: (before?.runs ?? 0) + 1,
    lastDurationMs: run.durationMs,
    lastError: run.ok ? before?.lastError : { at, ...run.error! },
  };
  const newer = (a: SnapshotFacts | undefined, b: SnapshotFacts | undefined) => (!a ? b : !b ? a : Date.parse(b.takenAt) >= Date.parse(a.takenAt) ? b : a);
  const entry: HistoryEntry = { id: run.id, kind: run.kind, at, ok: run.ok, exitCode: run.exitCode, toolVersion: run.toolVersion };
  return {
    ...base,
    schema: 1,
    cluster,
    updatedAt: new Date().toISOString(),
    toolVersion: run.toolVersion,
    schedule: run.schedule ?? base.schedule,
    operations: { ...base.operations, [run.kind]: op },
    newestGood: newer(base.newestGood, run.snapshot),
    ...applyDrill(base, run.drill),
    drillEvery: run.drillEvery ?? base.drillEvery,
    copies: applyCopies(base.copies, at, run.copies),
    history: [entry, ...base.history.filter((h) => h.id !== run.id)].slice(0, HISTORY_LIMIT),
  };
}

/** Parses a stored record; undefined for anything that is not one (it is then rewritten from scratch). */
export function parseStatusRecord(text: string): StatusRecord | undefined {
  try {
    const parsed = statusRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
