import { HeadObjectCommand, ListObjectsV2Command, PutObjectLegalHoldCommand, type S3Client } from "@aws-sdk/client-s3";
import { OperationError } from "../errors.js";
import { describeS3Error } from "../s3/client.js";
import type { SnapshotStore } from "./store.js";

export interface LegalHoldReport {
  ok: true;
  bucket: string;
  key: string;
  /** true after `vrb hold`, false after `vrb release`. */
  hold: boolean;
  /** Every object that now carries (or no longer carries) the hold, with the version it was set on. */
  objects: { key: string; versionId?: string }[];
}

/** The snapshot and every object stored beside it under its key (manifest, files index, ...). */
async function objectsOf(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

/**
 * Sets (or clears) an S3 Object Lock legal hold on a snapshot's current version and on every
 * object beside it (`<key>.manifest.json`, and any other `<key>.*` such as a files index): a held
 * version cannot be deleted by anyone until the hold is released, whatever its retention says.
 * For incident response: freeze the evidence / the last good state. Needs a bucket with Object
 * Lock and `s3:PutObjectLegalHold` (an operator's permission, not the backup writer's).
 */
export async function setLegalHold(store: SnapshotStore, key: string, hold: boolean): Promise<LegalHoldReport> {
  const { s3, bucket } = store;
  const keys = await objectsOf(s3, bucket, key);
  if (!keys.includes(key)) throw new OperationError(`snapshot s3://${bucket}/${key} does not exist`, { stage: hold ? "hold" : "release" });
  const objects: LegalHoldReport["objects"] = [];
  for (const k of keys) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }));
    const versionId = head.VersionId && head.VersionId !== "null" ? head.VersionId : undefined;
    try {
      await s3.send(new PutObjectLegalHoldCommand({ Bucket: bucket, Key: k, VersionId: versionId, LegalHold: { Status: hold ? "ON" : "OFF" } }));
    } catch (err) {
      throw new OperationError(
        `could not ${hold ? "set" : "clear"} the legal hold on s3://${bucket}/${k}: ${describeS3Error(err)} (the bucket needs Object Lock, enabled when it was created, and the caller s3:PutObjectLegalHold)`,
        { stage: hold ? "hold" : "release", cause: err },
      );
    }
    const after = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k, VersionId: versionId }));
    if ((after.ObjectLockLegalHoldStatus === "ON") !== hold) {
      throw new OperationError(`s3://${bucket}/${k} reports legal hold ${after.ObjectLockLegalHoldStatus ?? "none"} after it was set ${hold ? "ON" : "OFF"}`, {
        stage: hold ? "hold" : "release",
      });
    }
    objects.push({ key: k, versionId });
  }
  return { ok: true, bucket, key, hold, objects };
}
