import { mapLimit } from "../map-limit.js";
import { parseDuration } from "../schedule.js";
import { DEFAULT_ORPHAN_UPLOAD_AGE, findOrphanUploads, type OrphanUpload } from "../catalogue/orphan-uploads.js";
import { recoveryPointStatus, type RecoveryPointStatus } from "../catalogue/rpo.js";
import { damagedNewerThan, isDamagedSnapshot, isTrustedSnapshot, SnapshotStore, type ManifestCache, type StoredSnapshot } from "../catalogue/snapshot-store.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { DrillFacts, HistoryEntry, OperationStatus, RunError, RunKind, SnapshotFacts, StatusRecord } from "./record.js";
import { drillProblems } from "./drills.js";
import { StatusStore } from "./status-store.js";

/** What `vrb status --json` prints for one cluster, and what the metrics are rendered from. */
export interface ClusterStatus {
  cluster: string;
  /** URL of the status object, in the store's scheme (s3://...). */
  location: string;
  /** False when no run has recorded anything yet (the snapshot facts still come from the bucket). */
  recorded: boolean;
  updatedAt?: string;
  toolVersion?: string;
  /** The backup operation's figures, the ones that decide whether backups work. */
  lastAttempt?: string;
  lastSuccess?: string;
  consecutiveFailures: number;
  lastError?: RunError;
  operations: Partial<Record<RunKind, OperationStatus>>;
  /** From the bucket's listing (the truth), not from the record. */
  newestGood?: SnapshotFacts & { ageSeconds: number };
  goodSnapshots: number;
  /**
   * Damaged snapshots (manifest present, object not matching it, engine/catalogue/snapshot-store.ts
   * isDamagedSnapshot): how many, the newest few, and whether the newest snapshot of all is one
   * (then `latest` falls back to an older one). Absent in statuses of older versions: none.
   */
  invalidSnapshots?: number;
  damaged?: { key: string; takenAt: string; problem: string; newerThanLatest: boolean }[];
  lockedSnapshots: number;
  /**
   * Unfinished uploads under the cluster's folder older than `uploadsOlderThan` (orphans of killed
   * or failed runs, engine/catalogue/orphan-uploads.ts); absent when the store would not list them.
   */
  incompleteUploads?: number;
  orphanUploads?: OrphanUpload[];
  uploadsOlderThan?: string;
  lastDrill?: DrillFacts;
  /** The newest passing drill and the newest skipped one (engine/status/drills.ts). */
  lastPassedDrill?: DrillFacts;
  lastSkippedDrill?: DrillFacts;
  /** drill.every of the scheduled drills (the record's; absent without scheduled drills). */
  drillEvery?: string;
  /** The copies' outcomes of the backups recorded here, per copy name (policy `copies`). */
  copies?: StatusRecord["copies"];
  rpo: RecoveryPointStatus;
  history: HistoryEntry[];
}

export interface StatusQuery {
  /** The destination's store (its prefix is the clusters'). */
  store: ObjectStore;
  cluster: string;
  /** Manifests read by an earlier query of the same store (the exporter's refreshes): only new ones are read. */
  manifestCache?: ManifestCache;
  /** Snapshots an earlier query found under a COMPLIANCE lock (the exporter's refreshes): not asked again until it ends. */
  complianceLocks?: ComplianceLockCache;
  /** schedule.every when the record names none (the record's, from the last backup, wins). */
  every: string;
  now?: Date;
  abortSignal?: AbortSignal;
  /** Unfinished uploads older than this (a duration, default 24h) are reported as orphans. */
  uploadsOlderThan?: string;
}

/** Reads a cluster's status object and its snapshots, and combines them. */
export async function readClusterStatus(q: StatusQuery): Promise<ClusterStatus> {
  const now = q.now ?? new Date();
  const status = new StatusStore(q.store);
  const { record } = await status.read(q.cluster, { abortSignal: q.abortSignal });
  const store = new SnapshotStore(q.store, { manifestCache: q.manifestCache });
  const all = await store.list(q.cluster, { signal: q.abortSignal });
  const good = all.filter((s) => s.status === "good");
  const damaged = all.filter(isDamagedSnapshot);
  const skipped = new Set(damagedNewerThan(all, all.find(isTrustedSnapshot)).map((s) => s.key));
  const lockedSnapshots = await countLocked(store, q.cluster, good, now, q.complianceLocks, q.abortSignal);
  const newest = good[0];
  const backup = record?.operations.backup;
  const uploadsOlderThan = q.uploadsOlderThan ?? DEFAULT_ORPHAN_UPLOAD_AGE;
  // A reader that may not list multipart uploads still gets the rest of the status.
  const orphans = await findOrphanUploads(q.store, store.clusterPrefix(q.cluster), parseDuration(uploadsOlderThan), now).catch(() => undefined);
  return {
    cluster: q.cluster,
    location: status.url(q.cluster),
    recorded: Boolean(record),
    updatedAt: record?.updatedAt,
    toolVersion: record?.toolVersion,
    lastAttempt: backup?.lastAttempt,
    lastSuccess: backup?.lastSuccess,
    consecutiveFailures: backup?.consecutiveFailures ?? 0,
    lastError: backup?.lastError,
    operations: record?.operations ?? {},
    newestGood: newest
      ? {
          key: newest.key,
          takenAt: newest.takenAt.toISOString(),
          bytes: newest.bytes,
          raftIndex: newest.raftIndex,
          ageSeconds: Math.max(0, Math.round((now.getTime() - newest.takenAt.getTime()) / 1000)),
        }
      : undefined,
    goodSnapshots: good.length,
    invalidSnapshots: damaged.length,
    damaged: damaged
      .slice(0, 10)
      .map((s) => ({ key: s.key, takenAt: s.takenAt.toISOString(), problem: s.problem ?? "does not match its manifest", newerThanLatest: skipped.has(s.key) })),
    lockedSnapshots,
    ...(orphans ? { incompleteUploads: orphans.length, orphanUploads: orphans.slice(0, 10), uploadsOlderThan } : {}),
    lastDrill: record?.lastDrill,
    ...(record?.lastPassedDrill ? { lastPassedDrill: record.lastPassedDrill } : {}),
    ...(record?.lastSkippedDrill ? { lastSkippedDrill: record.lastSkippedDrill } : {}),
    ...(record?.drillEvery ? { drillEvery: record.drillEvery } : {}),
    ...(record?.copies ? { copies: record.copies } : {}),
    rpo: recoveryPointStatus(good, record?.schedule ?? q.every, now),
    history: record?.history ?? [],
  };
}

/**
 * Snapshots last seen under a COMPLIANCE lock, by key: the snapshot object's etag then and the
 * lock's end. No one can shorten or lift such a lock before it ends (S3 Object Lock, GCS Locked
 * retention, Azure Locked immutability), so until then the snapshot is locked whatever else a
 * HEAD would say (a legal hold added or released), unless the object was replaced (its etag).
 */
export type ComplianceLockCache = Map<string, { etag: string; until: Date }>;

/**
 * How many of the good snapshots are locked now (a retention not yet ended, or a legal hold). Each
 * one's lock is asked (a HEAD) but for those `cache` knows locked until later; what the answers
 * show locked under COMPLIANCE is remembered, and what is gone or ended forgotten.
 */
async function countLocked(
  store: SnapshotStore,
  cluster: string,
  good: readonly StoredSnapshot[],
  now: Date,
  cache: ComplianceLockCache | undefined,
  signal: AbortSignal | undefined,
): Promise<number> {
  const lockedNow = (until: Date | undefined) => until !== undefined && until.getTime() > now.getTime();
  const known = (s: StoredSnapshot) => {
    const c = s.etag === undefined ? undefined : cache?.get(s.key);
    return c !== undefined && c.etag === s.etag && lockedNow(c.until);
  };
  const ask = good.filter((s) => !known(s));
  const locks = await store.retentions(ask, { signal });
  if (cache) {
    const present = new Set(good.map((s) => s.key));
    const prefix = store.clusterPrefix(cluster);
    for (const [key, c] of cache) if (key.startsWith(prefix) && (!present.has(key) || !lockedNow(c.until))) cache.delete(key);
    ask.forEach((s, i) => {
      const r = locks[i];
      if (r?.mode === "COMPLIANCE" && lockedNow(r.until) && s.etag !== undefined) cache.set(s.key, { etag: s.etag, until: r.until! });
      else cache.delete(s.key);
    });
  }
  return good.length - ask.length + locks.filter((r) => r?.legalHold || lockedNow(r?.until)).length;
}

/**
 * Clusters whose status is read at once. Each reads up to 16 objects at a time (its manifests, then
 * its locks), so 3 stay within the S3 client's 50 sockets: no read queues for a socket while its
 * deadline runs.
 */
const CLUSTERS_READ_AT_ONCE = 3;

/**
 * The status of each of `clusters` (default: every cluster under the store's prefix), in that
 * order, a few clusters at a time. The first cluster that cannot be read fails the whole read
 * (mapLimit): for a list of clusters read as one (a named cluster, tests). A fleet's readers
 * (`vrb status --all-clusters`, the exporter) use readEachClusterStatus.
 */
export async function readClusterStatuses(q: Omit<StatusQuery, "cluster"> & { clusters?: readonly string[] }): Promise<ClusterStatus[]> {
  const { clusters, ...query } = q;
  const names = clusters ?? (await listClusters(q.store, q.abortSignal));
  return mapLimit(names, CLUSTERS_READ_AT_ONCE, (cluster, signal) => readClusterStatus({ ...query, cluster, abortSignal: signal }), q.abortSignal);
}

/** One cluster's read in a fleet's: its status, or why it could not be read. */
export type ClusterRead = { cluster: string; status: ClusterStatus; error?: undefined } | { cluster: string; status?: undefined; error: unknown };

/**
 * Like readClusterStatuses, but each cluster on its own: one that cannot be read (a folder the
 * reader's role may not see, a prefix the store keeps throttling) fails only its own entry, so
 * one team's broken cluster does not blind the monitoring of every other. The listing of the
 * clusters failing, or `abortSignal`, fails the whole. `onRead` hears each cluster as it settles
 * (the exporter keeps what was read before its deadline).
 */
export async function readEachClusterStatus(q: Omit<StatusQuery, "cluster"> & { clusters?: readonly string[] }, onRead?: (read: ClusterRead) => void): Promise<ClusterRead[]> {
  const { clusters, ...query } = q;
  const names = clusters ?? (await listClusters(q.store, q.abortSignal));
  return mapLimit(
    names,
    CLUSTERS_READ_AT_ONCE,
    async (cluster, signal) => {
      let read: ClusterRead;
      try {
        read = { cluster, status: await readClusterStatus({ ...query, cluster, abortSignal: signal }) };
      } catch (error) {
        // Stopped from outside (a deadline, SIGTERM): the whole read stops, no cluster is to blame.
        if (signal.aborted) throw error;
        read = { cluster, error };
      }
      onRead?.(read);
      return read;
    },
    q.abortSignal,
  );
}

/** Every cluster under the store's prefix: one key segment each (`<prefix><cluster>/`). */
export async function listClusters(store: ObjectStore, abortSignal?: AbortSignal): Promise<string[]> {
  const folders = await store.listFolders(store.prefix, { signal: abortSignal });
  return folders.map((f) => f.slice(store.prefix.length, -1)).sort();
}

export interface CheckOptions {
  /** Fail when the backup's last N attempts failed (default 1). */
  maxFailures?: number;
  /** Fail when the last drill is older than this (a duration like '30d'), failed, or missing. */
  maxDrillAge?: string;
  /**
   * The policy's drill.every (scheduled drills); default the record's. With one, the check fails
   * when the newest drill failed or none passed within it plus one schedule window.
   */
  drillEvery?: string;
  now?: Date;
}

/** The verdict of `vrb status --check`: every reason it fails, in words. */
export function checkStatus(s: ClusterStatus, opts: CheckOptions = {}): { ok: boolean; problems: string[] } {
  const now = opts.now ?? new Date();
  const maxFailures = opts.maxFailures ?? 1;
  const problems: string[] = [];
  if (!s.rpo.ok) problems.push(`RPO missed: ${s.rpo.message}`);
  const damaged = s.damaged ?? [];
  if (damaged.length) {
    const d = damaged[0]!;
    problems.push(
      `${s.invalidSnapshots ?? damaged.length} damaged snapshot(s) (the object does not match its manifest), newest ${d.key}: ${d.problem}` +
        (d.newerThanLatest ? `; it is newer than every good snapshot, so 'latest' falls back to ${s.newestGood?.key ?? "nothing"}` : "") +
        "; find out what changed the object (vrb verify <key>), then take a new backup",
    );
  }
  for (const kind of ["backup", "prune"] as const) {
    const op = s.operations[kind];
    if (op && op.consecutiveFailures >= maxFailures) {
      const err = op.lastError ? `; last error [stage: ${op.lastError.stage}] (exit ${op.lastError.exitCode}): ${op.lastError.message}` : "";
      problems.push(`${kind}: the last ${op.consecutiveFailures} attempt(s) failed (--max-failures ${maxFailures})${err}`);
    }
  }
  const drillEvery = opts.drillEvery ?? s.drillEvery;
  if (drillEvery) problems.push(...drillProblems(s, { every: drillEvery, schedule: s.rpo.every, now }));
  if (opts.maxDrillAge) {
    const maxMs = parseDuration(opts.maxDrillAge);
    const d = s.lastDrill;
    if (!d) problems.push(`no drill recorded (--max-drill-age ${opts.maxDrillAge})`);
    else {
      // With scheduled drills the failure is reported above already.
      if (!d.ok && !drillEvery) problems.push(`the last drill (${d.at}) failed${d.problems?.length ? `: ${d.problems.join("; ")}` : ""}`);
      if (now.getTime() - Date.parse(d.at) > maxMs) problems.push(`the last drill is from ${d.at}, older than --max-drill-age ${opts.maxDrillAge}`);
    }
  }
  return { ok: problems.length === 0, problems };
}
