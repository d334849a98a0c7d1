import type { ObjectStore, OwnUploads, WrittenObject } from "../storage/object-store.js";
import { timeoutSignal } from "../timeout-signal.js";

const CALL_TIMEOUT_MS = 10_000;

/** Deletes object versions this backup wrote (best effort: a locked version stays, and is reported). */
export async function deleteWrittenVersions(store: ObjectStore, written: WrittenObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const w of written) {
    try {
      await store.delete(w.key, { version: w.version, signal: timeoutSignal(CALL_TIMEOUT_MS) });
    } catch (err) {
      problems.push(`could not remove ${store.url(w.key)}${w.version ? ` (version ${w.version})` : ""}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}

/**
 * Cleanup after a failed backup of `key`: aborts its own unfinished upload (retried, up to a
 * minute; with the cluster's backup lease held, engine/backup/lease.ts, no other run uploads
 * that key) and removes the object versions it wrote (`written`, newest first) where the lock
 * allows. Returns what could not be cleaned, as notes for the error message.
 */
export async function cleanUpFailedBackup(
  store: ObjectStore,
  key: string,
  written: WrittenObject[],
  progress: { info(message: string): void },
  own?: OwnUploads,
  deadlineMs = 60_000,
): Promise<string[]> {
  const notes: string[] = [];
  const cleaned = await store.abortUploads(key, { deadlineMs, own });
  if (cleaned.aborted.length) progress.info(`aborted unfinished multipart upload of ${store.url(key)}`);
  if (cleaned.left.length) {
    notes.push(
      `the unfinished multipart upload of ${store.url(key)} could not be aborted (${cleaned.error ?? "still listed"}); ` +
        `abort it with 'aws s3api abort-multipart-upload' or let a lifecycle rule (AbortIncompleteMultipartUpload) remove it`,
    );
  }
  // Written objects without a manifest would only be "incomplete"; remove them if the lock allows.
  notes.push(...(await deleteWrittenVersions(store, written)));
  return notes;
}
