import type { S3Client } from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import { OperationError } from "../../errors.js";
import { StoreConflictError, StoreLockedError } from "../errors.js";
import type {
  IncompleteUpload,
  ObjectDetails,
  ObjectInfo,
  ObjectStore,
  ObjectUpload,
  OwnUploads,
  ReadOptions,
  StoreCapabilities,
  UploadOptions,
  WriteOptions,
  WrittenObject,
} from "../object-store.js";
import { retryS3Call } from "./client.js";
import { checkBucketExists } from "./container.js";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  s3Presigner,
} from "./sdk.js";
import { describeS3Error, isAccessDenied, isLostRace, isMissingObject } from "./errors.js";
import { openS3Read } from "./read.js";
import { S3ObjectUpload } from "./upload.js";
import { abortS3Uploads, listS3Uploads } from "./uploads.js";

export interface S3StoreSettings {
  client: S3Client;
  bucket: string;
  /** The destination's prefix ('' or ending in '/'). */
  prefix?: string;
  /** SSE-KMS key for every write (the bucket policy may deny uploads under any other key). */
  kmsKeyId?: string;
  /** The destination's name (default `primary`). */
  name?: string;
  /** Whether close() destroys the client (false for a client the caller built and keeps). */
  ownsClient?: boolean;
}

const S3_URL = /^s3:\/\/([^/]+)\/(.+)$/;

/**
 * AWS S3 and S3-compatible servers (SeaweedFS, MinIO, moto) behind the ObjectStore seam. Every
 * write carries the destination's SSE-KMS settings; versions, Object Lock retention, legal holds
 * and pre-signed URLs are S3's own.
 */
export class S3Store implements ObjectStore {
  readonly type = "s3" as const;
  readonly name: string;
  readonly container: string;
  readonly prefix: string;
  readonly capabilities: StoreCapabilities = { versions: true, lock: true, legalHold: true, presign: true };
  private readonly client: S3Client;
  private readonly sse: { ServerSideEncryption?: "aws:kms"; SSEKMSKeyId?: string };

  constructor(private readonly settings: S3StoreSettings) {
    this.client = settings.client;
    this.container = settings.bucket;
    this.prefix = settings.prefix ?? "";
    this.name = settings.name ?? "primary";
    this.sse = settings.kmsKeyId ? { ServerSideEncryption: "aws:kms", SSEKMSKeyId: settings.kmsKeyId } : {};
  }

  url(key?: string): string {
    return key === undefined ? `s3://${this.container}` : `s3://${this.container}/${key}`;
  }

  parseUrl(ref: string): { container: string; key: string } | undefined {
    const m = S3_URL.exec(ref);
    return m ? { container: m[1]!, key: m[2]! } : undefined;
  }

  withContainer(container: string): ObjectStore {
    return container === this.container ? this : new S3Store({ ...this.settings, bucket: container, ownsClient: false });
  }

  checkContainer(opts: { field?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string | undefined> {
    return checkBucketExists(this.client, this.container, this.prefix, opts);
  }

  /**
   * A read (list, head, a small object) that S3 answered with a 5xx or throttling after the SDK's
   * own attempts gets the further rounds a part transfer gets: a busy bucket answering SlowDown to
   * a few requests does not fail a restore's `latest` or a verify. No answer at all (refused,
   * reset) is left to the SDK's attempts, so a store that is down is reported at once.
   */
  private answered<T>(read: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return retryS3Call(read, { signal, retryIf: (info) => info.status !== undefined });
  }

  async list(prefix: string, opts: { signal?: AbortSignal; limit?: number } = {}): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const MaxKeys = opts.limit !== undefined ? Math.min(1000, opts.limit - out.length) : undefined;
      const page = await this.answered(
        () => this.client.send(new ListObjectsV2Command({ Bucket: this.container, Prefix: prefix, ContinuationToken: token, MaxKeys }), { abortSignal: opts.signal }),
        opts.signal,
      );
      for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, bytes: o.Size ?? 0, modified: o.LastModified, etag: o.ETag });
      token = page.IsTruncated && (opts.limit === undefined || out.length < opts.limit) ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async listFolders(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.answered(
        () => this.client.send(new ListObjectsV2Command({ Bucket: this.container, Prefix: prefix, Delimiter: "/", ContinuationToken: token }), { abortSignal: opts.signal }),
        opts.signal,
      );
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async head(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<ObjectDetails | undefined> {
    let h;
    try {
      h = await this.answered(
        () => this.client.send(new HeadObjectCommand({ Bucket: this.container, Key: key, VersionId: opts.version }), { abortSignal: opts.signal }),
        opts.signal,
      );
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw err;
    }
    const legalHold = h.ObjectLockLegalHoldStatus === "ON";
    const locked = h.ObjectLockMode || h.ObjectLockRetainUntilDate || legalHold;
    return {
      key,
      bytes: h.ContentLength ?? 0,
      modified: h.LastModified,
      version: h.VersionId,
      etag: h.ETag,
      lock: locked ? { mode: h.ObjectLockMode as "GOVERNANCE" | "COMPLIANCE" | undefined, until: h.ObjectLockRetainUntilDate, legalHold } : undefined,
      encryption: h.ServerSideEncryption ? { algorithm: h.ServerSideEncryption, keyId: h.SSEKMSKeyId } : undefined,
    };
  }

  async readText(key: string, opts: { signal?: AbortSignal } = {}): Promise<{ text: string; etag?: string } | undefined> {
    try {
      return await this.answered(async () => {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.container, Key: key }), { abortSignal: opts.signal });
        return { text: await res.Body!.transformToString("utf8"), etag: res.ETag };
      }, opts.signal);
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw new OperationError(`could not read ${this.url(key)}: ${describeS3Error(err)}`, { cause: err });
    }
  }

  async writeText(key: string, text: string, opts: WriteOptions = {}): Promise<WrittenObject> {
    try {
      const put = await this.client.send(
        new PutObjectCommand({
          Bucket: this.container,
          Key: key,
          Body: text,
          ContentType: opts.contentType,
          ...this.sse,
          ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : opts.ifAbsent ? { IfNoneMatch: "*" } : {}),
        }),
        { abortSignal: opts.signal },
      );
      return { key, version: put.VersionId, etag: put.ETag };
    } catch (err) {
      // AWS S3, SeaweedFS and moto all answer a stale condition with 412 (409: another conditional write in flight).
      if ((opts.ifMatch || opts.ifAbsent) && isLostRace(err)) {
        throw new StoreConflictError(`${this.url(key)} changed since it was read (${describeS3Error(err)})`, { cause: err });
      }
      // SeaweedFS answers a write into a missing bucket with AccessDenied: the URL says which bucket.
      throw new OperationError(`could not write ${this.url(key)}: ${describeS3Error(err)}`, { cause: err });
    }
  }

  openRead(key: string, opts?: ReadOptions): Promise<{ body: Readable; bytes: number; version?: string }> {
    return openS3Read(this.client, this.container, key, opts);
  }

  createUpload(opts: UploadOptions): ObjectUpload {
    return new S3ObjectUpload({ client: this.client, bucket: this.container, sse: this.sse }, opts);
  }

  listIncompleteUploads(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<IncompleteUpload[]> {
    return listS3Uploads(this.client, this.container, prefix, opts.signal);
  }

  abortUploads(key: string, opts: { own?: OwnUploads; deadlineMs?: number } = {}): Promise<{ aborted: string[]; left: string[]; error?: string }> {
    return abortS3Uploads(this.client, this.container, key, opts);
  }

  /** Every version and delete marker of exactly `key` ("null" versions in an unversioned bucket). */
  async versions(key: string): Promise<WrittenObject[]> {
    const out: WrittenObject[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    do {
      const page = await this.answered(() => this.client.send(new ListObjectVersionsCommand({ Bucket: this.container, Prefix: key, KeyMarker, VersionIdMarker })));
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) if (v.Key === key) out.push({ key, version: v.VersionId });
      KeyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      VersionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (KeyMarker);
    return out;
  }

  async delete(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.container, Key: key, VersionId: opts.version }), { abortSignal: opts.signal });
    } catch (err) {
      // S3 refuses the DELETE of a locked or held version with AccessDenied.
      if (isAccessDenied(err)) throw new StoreLockedError(err instanceof Error ? err.message : String(err), { cause: err });
      throw err;
    }
  }

  async lock(obj: WrittenObject, mode: "GOVERNANCE" | "COMPLIANCE", until: Date): Promise<void> {
    await this.client.send(new PutObjectRetentionCommand({ Bucket: this.container, Key: obj.key, VersionId: obj.version, Retention: { Mode: mode, RetainUntilDate: until } }));
  }

  async setLegalHold(obj: WrittenObject, hold: boolean): Promise<void> {
    await this.client.send(new PutObjectLegalHoldCommand({ Bucket: this.container, Key: obj.key, VersionId: obj.version, LegalHold: { Status: hold ? "ON" : "OFF" } }));
  }

  presign(key: string, expiresInSeconds: number): Promise<string> {
    return s3Presigner().getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.container, Key: key }), { expiresIn: expiresInSeconds });
  }

  describeError(err: unknown): string {
    return describeS3Error(err);
  }

  close(): void {
    if (this.settings.ownsClient !== false) this.client.destroy();
  }
}
