import type { S3Client } from "@aws-sdk/client-s3";
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand } from "./sdk.js";
import { sleep } from "../../wait.js";
import type { IncompleteUpload, OwnUploads } from "../object-store.js";
import { isNoSuchBucket, s3ErrorInfo } from "./errors.js";
import { timedOutAfterMs, timeoutSignal } from "../../timeout-signal.js";

// Multipart uploads that were started and never completed: listed, and aborted after a failed run.

const CALL_TIMEOUT_MS = 10_000;

/** Every unfinished multipart upload under `prefix`. */
export async function listS3Uploads(client: S3Client, bucket: string, prefix: string, signal?: AbortSignal): Promise<IncompleteUpload[]> {
  const out: IncompleteUpload[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  do {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, UploadIdMarker }), { abortSignal: signal });
    for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: u.Key, id: u.UploadId, started: u.Initiated });
    KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    UploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (KeyMarker);
  return out;
}

/**
 * Aborts the unfinished multipart uploads of exactly `key` (only `own`'s, when given), retrying until none is left or the
 * deadline passes (an S3 server that is briefly down, or a part still in flight that recreates
 * the upload's listing, both need a second look). Object keys carry the snapshot's second and
 * raft index, so an upload of this exact key is this backup's. An answer that another look cannot
 * change (a 4xx: the credentials may not list uploads, the bucket is gone) ends the retries at once;
 * a bucket that does not exist holds no upload. Returns the upload ids it could not abort (empty when all is clean).
 */
export async function abortS3Uploads(
  client: S3Client,
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
  // The SDK says only "Request aborted" when a call's deadline passes.
  let call: AbortSignal | undefined;
  const bounded = () => (call = timeoutSignal(CALL_TIMEOUT_MS));
  while (Date.now() < deadline) {
    try {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }), { abortSignal: bounded() });
      pending = (page.Uploads ?? []).filter((u) => u.Key === key && u.UploadId && mine(u.UploadId)).map((u) => u.UploadId!);
      if (pending.length === 0) {
        // Two clean looks a moment apart: a part upload that was in flight has settled by then.
        if (++cleanLooks >= 2) return { aborted, left: [] };
        await sleep(500);
        continue;
      }
      cleanLooks = 0;
      for (const id of pending) {
        await client
          .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }), { abortSignal: bounded() })
          // Gone already (completed or aborted meanwhile): the next look says whether it is.
          .catch((err: unknown) => {
            if (s3ErrorInfo(err).code !== "NoSuchUpload") throw err;
          });
        if (!aborted.includes(id)) aborted.push(id);
      }
    } catch (err) {
      if (isNoSuchBucket(err)) return { aborted, left: [] };
      const late = timedOutAfterMs(call);
      lastError = late !== undefined ? `no answer within ${late / 1000}s` : err instanceof Error ? err.message : String(err);
      // A timeout or a reset has no answer (no status): S3 may be back in a moment, look again.
      const { status, retryable } = s3ErrorInfo(err);
      if (status !== undefined && !retryable) break;
      cleanLooks = 0;
      await sleep(1_000);
    }
  }
  return { aborted, left: pending.length ? pending : lastError ? ["(unknown: the uploads could not be listed)"] : [], error: lastError };
}
