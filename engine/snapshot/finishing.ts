import { HeadObjectCommand, PutObjectCommand, PutObjectRetentionCommand, type S3Client } from "@aws-sdk/client-s3";
import { IntegrityError, OperationError } from "../errors.js";
import { describeNetError } from "../vault/client.js";
import { manifestKeyFor, type SnapshotManifest } from "./manifest.js";

// The steps after the streamed pass, in order: read the object back, lock it, write the manifest
// last. Each takes what it needs and names its own stage in errors.

export interface StoredObject {
  bucket: string;
  key: string;
  versionId?: string;
}

/** SSE-KMS request parameters for the policy's kmsKeyId (none without one). */
export function sseParamsFor(kmsKeyId: string | undefined): { ServerSideEncryption?: "aws:kms"; SSEKMSKeyId?: string } {
  return kmsKeyId ? { ServerSideEncryption: "aws:kms" as const, SSEKMSKeyId: kmsKeyId } : {};
}

/**
 * Reads the uploaded object back (stage "upload"): its size must be the bytes sent, and with a
 * kmsKeyId it must be SSE-KMS encrypted. Returns the encryption the server reports.
 */
export async function checkStoredObject(
  s3: S3Client,
  obj: StoredObject,
  sent: { bytes: number; uploaded: number; kmsKeyId?: string },
): Promise<{ algorithm: string; kmsKeyId?: string } | undefined> {
  const { bucket, key } = obj;
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: obj.versionId }));
  if (head.ContentLength !== sent.bytes) {
    throw new IntegrityError(`s3://${bucket}/${key} holds ${head.ContentLength} bytes but ${sent.bytes} were sent (uploaded ${sent.uploaded})`, { stage: "upload" });
  }
  const sse = head.ServerSideEncryption ? { algorithm: head.ServerSideEncryption, kmsKeyId: head.SSEKMSKeyId } : undefined;
  if (sent.kmsKeyId && sse?.algorithm !== "aws:kms") {
    throw new OperationError(`s3://${bucket}/${key} is not SSE-KMS encrypted although destination.kmsKeyId is set (server reports ${sse?.algorithm ?? "none"})`, {
      stage: "upload",
    });
  }
  return sse;
}

/**
 * Sets per-object retention explicitly (multipart objects get no lock from bucket defaults on
 * every server) and reads it back (stage "lock").
 */
export async function lockObject(s3: S3Client, obj: StoredObject, mode: "GOVERNANCE" | "COMPLIANCE", until: Date): Promise<{ mode: "GOVERNANCE" | "COMPLIANCE"; until: string }> {
  const { bucket, key, versionId } = obj;
  try {
    await s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: key, VersionId: versionId, Retention: { Mode: mode, RetainUntilDate: until } }));
  } catch (err) {
    throw new OperationError(`could not set ${mode} retention on s3://${bucket}/${key}: ${describeNetError(err)} (object lock must be enabled when the bucket is created)`, {
      stage: "lock",
      cause: err,
    });
  }
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  const got = head.ObjectLockRetainUntilDate;
  // Servers store whole seconds; allow for that, nothing more.
  if (head.ObjectLockMode !== mode || !got || got.getTime() < until.getTime() - 1_000) {
    throw new OperationError(
      `s3://${bucket}/${key} does not report the retention just set (mode ${head.ObjectLockMode ?? "none"}, until ${got?.toISOString() ?? "none"}; wanted ${mode} until ${until.toISOString()})`,
      { stage: "lock" },
    );
  }
  return { mode, until: got.toISOString() };
}

/**
 * Writes the manifest beside its snapshot, last: without it the snapshot does not count. Locked
 * like its snapshot (as long as it), when the snapshot is. `onWritten` is told the manifest's
 * version as soon as it exists, so a failure after that (the lock) can remove it.
 */
export async function writeManifest(
  s3: S3Client,
  manifest: SnapshotManifest,
  opts: {
    bucket: string;
    kmsKeyId?: string;
    lock?: { mode: "GOVERNANCE" | "COMPLIANCE"; until: string };
    signal?: AbortSignal;
    onWritten?: (obj: StoredObject) => void;
  },
): Promise<string> {
  const manifestKey = manifestKeyFor(manifest.key);
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: opts.bucket,
      Key: manifestKey,
      Body: JSON.stringify(manifest, null, 2) + "\n",
      ContentType: "application/json",
      ...sseParamsFor(opts.kmsKeyId),
    }),
    { abortSignal: opts.signal },
  );
  const obj = { bucket: opts.bucket, key: manifestKey, versionId: put.VersionId };
  opts.onWritten?.(obj);
  if (opts.lock) await lockObject(s3, obj, opts.lock.mode, new Date(opts.lock.until));
  return manifestKey;
}
