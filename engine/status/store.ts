import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { OperationError } from "../errors.js";
import { isMissingObject, s3ErrorInfo } from "../s3/client.js";
import { sseParamsFor } from "../snapshot/finishing.js";
import { sleep } from "../wait.js";
import { STATUS_OBJECT_NAME, parseStatusRecord, type StatusRecord } from "./record.js";

export interface StatusLocation {
  bucket: string;
  /** The policy's destination.prefix ('' or ending in '/'). */
  prefix: string;
  cluster: string;
}

/** Key of a cluster's status object: beside its snapshots, so the same IAM scope covers it. */
export function statusKeyFor(prefix: string, cluster: string): string {
  return `${prefix}${cluster}/${STATUS_OBJECT_NAME}`;
}

export function statusUrlFor(loc: StatusLocation): string {
  return `s3://${loc.bucket}/${statusKeyFor(loc.prefix, loc.cluster)}`;
}

/** A lost race of a conditional write: 412 (the ETag moved on) or 409 (another conditional write in flight). */
export function lostRace(err: unknown): boolean {
  const { status, code } = s3ErrorInfo(err);
  return status === 412 || status === 409 || code === "PreconditionFailed" || code === "ConditionalRequestConflict";
}

/**
 * Reads and updates the status object. Updates are read-modify-write with S3 conditional writes
 * (If-None-Match: * to create, If-Match: <etag> to replace): a writer that lost a race re-reads
 * and re-applies its change, so concurrent runs never overwrite each other's updates. AWS S3,
 * SeaweedFS and moto all answer a stale condition with 412 (docs/status.md).
 */
export class StatusStore {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
    readonly prefix: string = "",
    /** The policy's destination.kmsKeyId: the bucket policy denies uploads under any other key. */
    readonly kmsKeyId?: string,
  ) {}

  key(cluster: string): string {
    return statusKeyFor(this.prefix, cluster);
  }

  async read(cluster: string, opts: { abortSignal?: AbortSignal } = {}): Promise<{ record?: StatusRecord; etag?: string }> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(cluster) }), { abortSignal: opts.abortSignal });
      return { record: parseStatusRecord(await res.Body!.transformToString("utf8")), etag: res.ETag };
    } catch (err) {
      if (isMissingObject(err)) return {};
      throw err;
    }
  }

  /**
   * Stores `record` only if the object is still the one read with `etag` (none: only if there is no
   * object yet); a lost race throws the store's 412/409 (see lostRace).
   */
  async write(cluster: string, record: StatusRecord, etag: string | undefined, opts: { abortSignal?: AbortSignal } = {}): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(cluster),
        Body: JSON.stringify(record, null, 2),
        ContentType: "application/json",
        ...sseParamsFor(this.kmsKeyId),
        ...(etag ? { IfMatch: etag } : { IfNoneMatch: "*" }),
      }),
      { abortSignal: opts.abortSignal },
    );
  }

  /** Applies `change` to the current record and stores it, retrying on lost races (with jitter). */
  async update(cluster: string, change: (prev: StatusRecord | undefined) => StatusRecord, opts: { attempts?: number } = {}): Promise<StatusRecord> {
    const attempts = opts.attempts ?? 10;
    for (let attempt = 1; ; attempt++) {
      const { record, etag } = await this.read(cluster);
      const next = change(record);
      try {
        await this.write(cluster, next, etag);
        return next;
      } catch (err) {
        if (!lostRace(err)) throw err;
        if (attempt >= attempts)
          throw new OperationError(`status object s3://${this.bucket}/${this.key(cluster)}: still changing under us after ${attempts} attempts`, { cause: err });
        await sleep(Math.round(50 + Math.random() * 100 * attempt));
      }
    }
  }
}
