import { interruption, messageOf, OperationError } from "../errors.js";
import { mapLimit } from "../map-limit.js";
import type { BackupPolicy } from "../policy.js";
import { silentProgress, type Progress } from "../progress.js";
import type { StoreType } from "../storage/destination.js";
import { isRefusedPermission, StoreLockedError } from "../storage/errors.js";
import type { ObjectStore, WrittenObject } from "../storage/object-store.js";
import { filesKeyFor, MANIFEST_SUFFIX, manifestKeyFor } from "../snapshot/manifest.js";
import type { DrillVerdict } from "../status/record.js";
import { StatusStore } from "../status/status-store.js";
import { isTrustedSnapshot, newestFirst, type SnapshotLeftover, type SnapshotStore, type StoredSnapshot } from "./snapshot-store.js";

export type RetentionRules = BackupPolicy["retention"];

export interface RetentionDecision {
  snapshot: StoredSnapshot;
  reason: string;
}

export interface RetentionPlan {
  keep: RetentionDecision[];
  delete: RetentionDecision[];
}

/** A snapshot without a manifest younger than this may be a backup still writing its manifest. */
export const INCOMPLETE_GRACE_MS = 60 * 60 * 1000;
const DAY_MS = 86_400_000;

/**
 * Decides which snapshots retention removes. `keepLast` and `maxAgeDays` are both limits: a good
 * snapshot goes when it is beyond the newest `keepLast` good ones OR older than `maxAgeDays`.
 * The newest good snapshot is always kept, whatever the rules say. Snapshots that are not good
 * (no manifest, unreadable manifest) are removed once older than an hour (a younger one may be
 * a backup that is still finishing). When the newest good snapshots are suspect (shrink guard),
 * the newest good one before them is kept as well: it is what `latest` restores. With drill
 * verdicts (the status record's `drills`, by key), the newest good snapshot whose drill passed is
 * kept too, whatever the rules say: the one snapshot proven restorable. A failed drill changes
 * nothing here: that snapshot is kept or removed by the rules like any other.
 */
export function planRetention(snapshots: StoredSnapshot[], rules: RetentionRules, now: Date = new Date(), drills: Record<string, DrillVerdict> = {}): RetentionPlan {
  const plan: RetentionPlan = { keep: [], delete: [] };
  const sorted = [...snapshots].sort(newestFirst);
  let goodSeen = 0;
  const newestTrusted = sorted.find(isTrustedSnapshot);
  const passed = (s: StoredSnapshot) => drills[s.key]?.ok === true && !drills[s.key]?.skipped;
  const newestProven = sorted.find((s) => s.status === "good" && passed(s));
  const drillNote = (s: StoredSnapshot) => (passed(s) ? "; its drill passed" : drills[s.key] && !drills[s.key]!.ok && !drills[s.key]!.skipped ? "; its drill failed" : "");
  for (const s of sorted) {
    const ageMs = now.getTime() - s.takenAt.getTime();
    if (s.status !== "good") {
      if (ageMs > INCOMPLETE_GRACE_MS) plan.delete.push({ snapshot: s, reason: `${s.status}: ${s.problem ?? "not a good snapshot"}` });
      else plan.keep.push({ snapshot: s, reason: `${s.status}, but younger than an hour (a backup may still be finishing)` });
      continue;
    }
    goodSeen++;
    if (goodSeen === 1) {
      plan.keep.push({ snapshot: s, reason: `newest good snapshot (always kept)${s.manifest?.suspect ? "; suspect (shrink guard)" : ""}${drillNote(s)}` });
      continue;
    }
    if (s === newestTrusted) {
      plan.keep.push({ snapshot: s, reason: `newest good snapshot before a suspect one: what 'latest' restores (always kept)${drillNote(s)}` });
      continue;
    }
    if (s === newestProven) {
      plan.keep.push({ snapshot: s, reason: "newest snapshot whose drill passed: proven restorable (always kept)" });
      continue;
    }
    if (rules.keepLast !== undefined && goodSeen > rules.keepLast) {
      plan.delete.push({ snapshot: s, reason: `beyond keepLast ${rules.keepLast} (good snapshot #${goodSeen})` });
    } else if (rules.maxAgeDays !== undefined && ageMs > rules.maxAgeDays * DAY_MS) {
      plan.delete.push({ snapshot: s, reason: `older than maxAgeDays ${rules.maxAgeDays} (${(ageMs / DAY_MS).toFixed(1)} days)` });
    } else {
      plan.keep.push({ snapshot: s, reason: `within retention${drillNote(s)}` });
    }
  }
  return plan;
}

export interface PruneReport {
  ok: true;
  dryRun: boolean;
  bucket: string;
  kept: { key: string; reason: string }[];
  deleted: { key: string; reason: string; versions: number }[];
  /** Due for deletion but still under object lock; deleted by a later prune after `until`. */
  locked: { key: string; reason: string; mode?: string; until?: string; legalHold?: boolean }[];
  /** Deletions that failed for another reason (exit 1). */
  failed: { key: string; error: string }[];
}

/** The lock that keeps one version from deletion now, if any (a delete marker carries none). */
async function lockOf(store: ObjectStore, v: WrittenObject, now: Date): Promise<{ mode?: string; until?: string; legalHold?: boolean } | undefined> {
  try {
    const lock = (await store.head(v.key, { version: v.version }))?.lock;
    const until = lock?.until;
    const legalHold = lock?.legalHold === true;
    if ((until && until.getTime() > now.getTime()) || legalHold) {
      return { mode: lock?.mode, until: until?.toISOString(), legalHold: legalHold || undefined };
    }
    return undefined;
  } catch {
    // A delete marker cannot be HEADed and carries no lock.
    return undefined;
  }
}

/**
 * Carries out a plan. With versioning on, "delete" means deleting every version (and delete
 * marker) of the snapshot and of its manifest: a plain DELETE would only hide them behind a
 * marker and keep paying for the bytes. Snapshot and manifest go together: if any version of
 * either is locked, neither is touched and the pair is reported as locked. The snapshot goes
 * first, so a failure half-way leaves at worst an orphan manifest (ignored by `list`, removed by
 * the next prune: `leftovers`), never a manifest-less snapshot that used to be good.
 */
export async function applyRetention(
  store: SnapshotStore,
  plan: RetentionPlan,
  opts: { dryRun?: boolean; progress?: Progress; now?: Date; leftovers?: { key: string; reason: string }[]; signal?: AbortSignal } = {},
): Promise<PruneReport> {
  const progress = opts.progress ?? silentProgress;
  const now = opts.now ?? new Date();
  const report: PruneReport = {
    ok: true,
    dryRun: Boolean(opts.dryRun),
    bucket: store.bucket,
    kept: plan.keep.map((d) => ({ key: d.snapshot.key, reason: d.reason })),
    deleted: [],
    locked: [],
    failed: [],
  };
  // Each snapshot's deletion is its own (versions listed, each HEADed for a lock, then deleted):
  // about ten requests in a row. A few snapshots at a time, so a first prune of a long history
  // takes minutes less over a WAN; the report keeps the plan's order, then the leftovers'.
  // Stopped (opts.signal), it starts no other snapshot but finishes those it is deleting: a
  // snapshot goes whole, with its manifest, or stays whole.
  const doomed = [...plan.delete.map((d) => ({ key: d.snapshot.key, reason: d.reason })), ...(opts.leftovers ?? [])];
  let deletedSoFar = 0;
  const outcomes = await mapLimit(
    doomed,
    SNAPSHOTS_PRUNED_AT_ONCE,
    async (d) => {
      const outcome = await pruneOne(store, d, now, Boolean(opts.dryRun), progress);
      if ("deleted" in outcome) deletedSoFar++;
      return outcome;
    },
    opts.signal,
  ).catch((err: unknown) => {
    if (!opts.signal?.aborted) throw err;
    const at = opts.dryRun
      ? "during a prune's dry run (nothing was deleted)"
      : `during prune: ${deletedSoFar} of the ${doomed.length} snapshot(s) due were deleted, each whole (its manifest with it), the deletions under way finished and no other started; run the prune again to finish`;
    throw interruption(opts.signal, at, "prune");
  });
  for (const o of outcomes) {
    if ("locked" in o) report.locked.push(o.locked);
    else if ("deleted" in o) report.deleted.push(o.deleted);
    else report.failed.push(o.failed);
  }
  return report;
}

/** Snapshots whose deletion runs at once: their requests are small, and one in a row was ~0.4 s each 20 ms away. */
const SNAPSHOTS_PRUNED_AT_ONCE = 8;

type PruneOutcome = { deleted: PruneReport["deleted"][number] } | { locked: PruneReport["locked"][number] } | { failed: PruneReport["failed"][number] };

/** What the identity running `vrb prune` needs, said when the store refuses it (the backup's writer identity may not delete). */
const PRUNE_NEEDS: Partial<Record<StoreType, string>> = {
  s3: "vrb prune needs the pruner identity (BackupPolicy prunerPolicyJson): s3:ListBucketVersions, s3:GetObjectVersion and s3:DeleteObjectVersion under the prefix; the backup's writer identity is denied every delete",
  gcs: "vrb prune needs the pruner role (gcs.prunerMembers): storage.objects.list, get and delete; the backup's writer role may not delete",
  azure: "vrb prune needs the pruner role (azure.prunerPrincipalIds): blobs read, delete and deleteBlobVersion; the backup's writer role may not delete",
};

/** Deletes one snapshot with its files archive and manifest, every version, unless a version is locked; never throws. */
async function pruneOne(store: SnapshotStore, d: { key: string; reason: string }, now: Date, dryRun: boolean, progress: Progress): Promise<PruneOutcome> {
  const key = d.key;
  try {
    // The snapshot, its files archive (if any) and its manifest go together.
    const versions = [...(await store.objects.versions(key)), ...(await store.objects.versions(filesKeyFor(key))), ...(await store.objects.versions(manifestKeyFor(key)))];
    let locked: { mode?: string; until?: string; legalHold?: boolean } | undefined;
    for (const v of versions) {
      locked = await lockOf(store.objects, v, now);
      if (locked) break;
    }
    if (locked) {
      progress.info(`kept (locked${locked.until ? ` until ${locked.until}` : ""}${locked.legalHold ? ", legal hold" : ""}): ${key}`);
      return { locked: { key, reason: d.reason, ...locked } };
    }
    if (dryRun) {
      progress.info(`would delete ${key} + manifest (${versions.length} version(s)): ${d.reason}`);
      return { deleted: { key, reason: d.reason, versions: versions.length } };
    }
    for (const v of versions) {
      try {
        await store.objects.delete(v.key, { version: v.version });
      } catch (err) {
        // A lock set between our HEAD and the DELETE, or a lock the HEAD did not show.
        if (!(err instanceof StoreLockedError)) throw err;
        return { locked: { key, reason: d.reason } };
      }
    }
    progress.info(`deleted ${key} + manifest (${versions.length} version(s)): ${d.reason}`);
    return { deleted: { key, reason: d.reason, versions: versions.length } };
  } catch (err) {
    const needs = isRefusedPermission(err) ? PRUNE_NEEDS[store.objects.type] : undefined;
    const error = `${messageOf(err)}${needs ? ` (${needs})` : ""}`;
    progress.warn(`could not delete ${key}: ${error}`);
    return { failed: { key, error } };
  }
}

/**
 * Plans and applies retention for one cluster: what `vrb prune` does. The drill verdicts come
 * from the cluster's status record; a record that cannot be read fails the prune (stage
 * `status`) rather than risk deleting the one snapshot a drill proved.
 */
export async function pruneSnapshots(
  store: SnapshotStore,
  cluster: string,
  rules: RetentionRules,
  opts: { dryRun?: boolean; progress?: Progress; now?: Date; signal?: AbortSignal } = {},
): Promise<PruneReport> {
  const status = new StatusStore(store.objects);
  const { record } = await status.read(cluster, { abortSignal: opts.signal }).catch((err: unknown) => {
    if (opts.signal?.aborted) throw interruption(opts.signal, "before prune deleted anything", "prune");
    throw new OperationError(
      `cannot read the status record ${status.url(cluster)} (which snapshots passed their drill): ${store.objects.describeError(err)}; nothing was deleted`,
      { stage: "status", cause: err },
    );
  });
  const listed = await store.listWithLeftovers(cluster, { signal: opts.signal });
  const plan = planRetention(listed.snapshots, rules, opts.now, record?.drills);
  const leftovers = planLeftovers(listed.leftovers, opts.now);
  const report = await applyRetention(store, plan, { ...opts, leftovers: leftovers.delete });
  return { ...report, kept: [...report.kept, ...leftovers.keep] };
}

/**
 * What to do with the remains of snapshots whose object is gone (SnapshotStore.leftovers): a
 * prune stopped between deleting a snapshot and its manifest leaves the manifest, which no
 * listing shows and no later prune would otherwise find. Removed like a snapshot (every version,
 * unless locked) once the newest of them is an hour old: a store whose listings lag (a directory
 * on NFS, read from another host) could show a new manifest before its snapshot.
 */
export function planLeftovers(
  leftovers: readonly SnapshotLeftover[],
  now: Date = new Date(),
): { keep: { key: string; reason: string }[]; delete: { key: string; reason: string }[] } {
  const out: ReturnType<typeof planLeftovers> = { keep: [], delete: [] };
  for (const l of leftovers) {
    const what = `its snapshot object is gone, its ${l.objects.map((k) => (k.endsWith(MANIFEST_SUFFIX) ? "manifest" : "files archive")).join(" and ")} left (a deletion stopped part-way)`;
    if (l.modified && now.getTime() - l.modified.getTime() > INCOMPLETE_GRACE_MS) out.delete.push({ key: l.key, reason: what });
    else out.keep.push({ key: l.key, reason: `${what}, but written less than an hour ago` });
  }
  return out;
}
