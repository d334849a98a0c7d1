import type { ObjectStore } from "../storage/object-store.js";

/**
 * Uploads a run started and never finished nor aborted: a backup killed with SIGKILL, or whose
 * clean-up gave up while S3 was down. They hold their parts' bytes (billed, invisible to a plain
 * listing) until aborted. A backup running now has one too, so only those older than a threshold
 * count as orphans: a day by default, far longer than any backup holds its upload open.
 */
export const DEFAULT_ORPHAN_UPLOAD_AGE = "24h";

export interface OrphanUpload {
  key: string;
  /** The store's id of the upload (an S3 UploadId). */
  id: string;
  started: string;
  ageSeconds: number;
}

/**
 * The unfinished uploads under `prefix` (a cluster's folder) started more than `olderThanMs`
 * before `now`, oldest first. One whose start the store does not report is left out: its age is
 * unknown, and it may be a backup's running now.
 */
export async function findOrphanUploads(store: ObjectStore, prefix: string, olderThanMs: number, now: Date = new Date()): Promise<OrphanUpload[]> {
  const uploads = await store.listIncompleteUploads(prefix);
  return uploads
    .flatMap((u) => {
      if (!u.started) return [];
      const ageMs = now.getTime() - u.started.getTime();
      return ageMs > olderThanMs ? [{ key: u.key, id: u.id, started: u.started.toISOString(), ageSeconds: Math.round(ageMs / 1000) }] : [];
    })
    .sort((a, b) => b.ageSeconds - a.ageSeconds);
}

export interface OrphanAbortReport {
  aborted: OrphanUpload[];
  failed: (OrphanUpload & { error: string })[];
}

/**
 * Aborts each orphan, by its own id only: a younger upload of the same key (however unlikely,
 * keys name the run's second) is never touched.
 */
export async function abortOrphanUploads(store: ObjectStore, orphans: OrphanUpload[]): Promise<OrphanAbortReport> {
  const report: OrphanAbortReport = { aborted: [], failed: [] };
  for (const o of orphans) {
    const r = await store.abortUploads(o.key, { own: { ids: [o.id], unknown: false }, deadlineMs: 10_000 });
    if (r.left.length) report.failed.push({ ...o, error: r.error ?? `still listed after the abort (${r.left.join(", ")})` });
    else report.aborted.push(o);
  }
  return report;
}

/** "2 unfinished upload(s) older than 24h" and one line per upload: what list and status print. */
export function describeOrphanUploads(orphans: OrphanUpload[], olderThan: string): string[] {
  if (!orphans.length) return [];
  return [
    `unfinished uploads older than ${olderThan}: ${orphans.length} (left by killed or failed runs; they hold storage until aborted: vrb prune --abort-uploads-older-than ${olderThan})`,
    ...orphans.map((o) => `  UNFINISHED: ${o.key} started ${o.started} (${formatAge(o.ageSeconds)} ago), upload id ${o.id}`),
  ];
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}
