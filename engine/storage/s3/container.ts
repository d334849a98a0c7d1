import type { S3Client } from "@aws-sdk/client-s3";
import { ListObjectsV2Command } from "./sdk.js";
import { ConfigError } from "../../errors.js";
import { isNoSuchBucket, s3ErrorInfo } from "./errors.js";
import { timedOutAfterMs, timeoutSignal } from "../../timeout-signal.js";

/** How long the check may take before the backup goes ahead without its answer. */
const CHECK_TIMEOUT_MS = 5_000;

/**
 * Refuses a destination bucket that does not exist, in one request and before anything else is
 * done (the Vault snapshot, the upload, the status record). Without it a missing bucket is only
 * found by the upload, and not as such: SeaweedFS answers an upload into a missing bucket with
 * AccessDenied, and the attempt then retries like any S3 failure.
 *
 * It lists one key under the destination's prefix rather than asking HeadBucket: S3 authorises
 * HeadBucket as s3:ListBucket of the whole bucket, which the kit's identities, allowed to list
 * under their prefix only (engine/access/iam.ts), are refused; the listing is what they may do, and
 * a missing bucket answers it with NoSuchBucket just the same.
 *
 * Only a definite "no such bucket" stops the backup. Anything else (403 from a role that may put
 * objects but not list the bucket, a slow or unreachable server) is no evidence, so the backup goes
 * ahead and the real request reports the real error. Returns a note when the check had no answer.
 */
export async function checkBucketExists(
  s3: S3Client,
  bucket: string,
  prefix: string,
  opts: { field?: string; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<string | undefined> {
  const signal = timeoutSignal(opts.timeoutMs ?? CHECK_TIMEOUT_MS, opts.signal);
  try {
    await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }), { abortSignal: signal });
    return undefined;
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    if (isNoSuchBucket(err, "bucket")) {
      const field = opts.field ?? "destination.bucket";
      throw new ConfigError(
        `bucket '${bucket}' does not exist (or is not visible to these credentials): create it (the SnapshotBucket component does) ` + `or check ${field} (--bucket, VRB_BUCKET)`,
        { field, stage: "destination", cause: err },
      );
    }
    const late = timedOutAfterMs(signal);
    if (late !== undefined) return `could not check that bucket '${bucket}' exists (no answer within ${Math.round(late / 1000)}s); going ahead`;
    const { code, status } = s3ErrorInfo(err);
    return `could not check that bucket '${bucket}' exists (${code ?? (err instanceof Error ? err.message : String(err))}${status ? `, HTTP ${status}` : ""}); going ahead`;
  }
}
