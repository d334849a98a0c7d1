import { AbortMultipartUploadCommand, DeleteObjectCommand, ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import { isNoSuchBucket } from "../s3/bucket.js";
import { s3ErrorInfo } from "../s3/client.js";
import { sleep } from "../wait.js";

const CALL_TIMEOUT_MS = 10_000;

/**
 * The uploads a run started: their ids, and `unknown` when a create was sent whose answer never
 * came (then every upload of the key is taken as the run's: with the cluster's backup lease held,
 * engine/snapshot/lease.ts, no other run uploads it).
 */
export interface OwnUploads {
  ids: string[];
  unknown: boolean;
}

/**
 * Aborts the unfinished multipart uploads of exactly `key` (only `own`'s, when given), retrying until none is left or the
 * deadline passes (an S3 server that is briefly down, or a part still in flight that recreates
 * the upload's listing, both need a second look). Object keys carry the snapshot's second and
 * raft index, so an upload of this exact key is this backup's. An answer that another look cannot
 * change (a 4xx: the credentials may not list uploads, the bucket is gone) ends the retries at once;
 * a bucket that does not exist holds no upload. Returns the upload ids it could not abort (empty when all is clean).
 */
export async function abortUnfinishedUploads(
  s3: S3Client,
  bucket: string,
  key: string,
  opts: { deadlineMs?: number; own?: OwnUploads } = {},
): Promise<{ aborted: string[]; left: string[]; error?: string }> {
  // Another run's upload of the same key (a run without the cluster's lease) is never touched.
  const mine = (id: string) => !opts.own || opts.own.unknown || opts.own.ids.includes(id);
  const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
  const aborted: string[] = [];
  let cleanLooks = 0;
  let lastError: string | undefined;
  let pending: string[] = [];
  while (Date.now() < deadline) {
    try {
      const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }), {
        abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      pending = (page.Uploads ?? []).filter((u) => u.Key === key && u.UploadId && mine(u.UploadId)).map((u) => u.UploadId!);
      if (pending.length === 0) {
        // Two clean looks a moment apart: a part upload that was in flight has settled by then.
        if (++cleanLooks >= 2) return { aborted, left: [] };
        await sleep(500);
        continue;
      }
      cleanLooks = 0;
      for (const id of pending) {
        await s3
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }), {
            abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS),
          })
          // Gone already (completed or aborted meanwhile): the next look says whether it is.
          .catch((err: unknown) => {
            if (s3ErrorInfo(err).code !== "NoSuchUpload") throw err;
          });
        if (!aborted.includes(id)) aborted.push(id);
      }
    } catch (err) {
      if (isNoSuchBucket(err)) return { aborted, left: [] };
      lastError = err instanceof Error ? err.message : String(err);
      // A timeout or a reset has no answer (no status): S3 may be back in a moment, look again.
      const { status, retryable } = s3ErrorInfo(err);
      if (status !== undefined && !retryable) break;
      cleanLooks = 0;
      await sleep(1_000);
    }
  }
  return { aborted, left: pending.length ? pending : lastError ? ["(unknown: the uploads could not be listed)"] : [], error: lastError };
}

/** Deletes object versions this backup wrote (best effort: a locked version stays, and is reported). */
export async function deleteWrittenVersions(s3: S3Client, bucket: string, written: { key: string; versionId?: string }[]): Promise<string[]> {
  const problems: string[] = [];
  for (const w of written) {
    try {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: w.key, VersionId: w.versionId }), {
        abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
    } catch (err) {
      problems.push(`could not remove s3://${bucket}/${w.key}${w.versionId ? ` (version ${w.versionId})` : ""}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}

/**
 * Cleanup after a failed backup of `key`: aborts its own unfinished multipart upload (retried, up to
 * a minute) and removes the object versions it wrote (`written`, newest first) where the lock
 * allows. Returns what could not be cleaned, as notes for the error message.
 */
export async function cleanUpFailedBackup(
  s3: S3Client,
  bucket: string,
  key: string,
  written: { key: string; versionId?: string }[],
  progress: { info(message: string): void },
  own?: OwnUploads,
): Promise<string[]> {
  const notes: string[] = [];
  const cleaned = await abortUnfinishedUploads(s3, bucket, key, { deadlineMs: 60_000, own });
  if (cleaned.aborted.length) progress.info(`aborted unfinished multipart upload of s3://${bucket}/${key}`);
  if (cleaned.left.length) {
    notes.push(
      `the unfinished multipart upload of s3://${bucket}/${key} could not be aborted (${cleaned.error ?? "still listed"}); ` +
        `abort it with 'aws s3api abort-multipart-upload' or let a lifecycle rule (AbortIncompleteMultipartUpload) remove it`,
    );
  }
  // Written objects without a manifest would only be "incomplete"; remove them if the lock allows.
  notes.push(...(await deleteWrittenVersions(s3, bucket, written)));
  return notes;
}
