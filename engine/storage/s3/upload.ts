import { crc32 } from "node:zlib";
import type { S3Client } from "@aws-sdk/client-s3";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from "./sdk.js";
import { OperationError } from "../../errors.js";
import type { OwnUploads, UploadOptions } from "../object-store.js";
import { PartedUpload, type PartCheck } from "../parted-upload.js";
import { retryS3Call, unsignedPayload } from "./client.js";
import { describeS3Error, s3ErrorInfo } from "./errors.js";

/** Where an S3 upload goes and how it is encrypted at rest: the store's settings. */
export interface S3UploadTarget {
  client: S3Client;
  bucket: string;
  sse: { ServerSideEncryption?: "aws:kms"; SSEKMSKeyId?: string };
}

/** S3 refuses parts below 5 MiB (except the last). */
export const S3_MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's limit on the parts of one multipart upload. */
export const S3_MAX_PARTS = 10_000;

/**
 * A Writable that stores what is written as one S3 object: multipart when it exceeds one part,
 * a single PUT otherwise. Memory is fixed: at most queueSize + 1 part buffers, allocated once
 * and reused, and writes wait while all of them are full or in flight. (lib-storage's Upload
 * allocates and concatenates a fresh buffer per part, which on a snapshot stream costs a copy
 * and a GC-managed 8 MiB allocation per part, and stops reading while its parts are in flight.)
 * Aborting an unfinished upload is the caller's job (ObjectStore.abortUploads), with retries; the
 * upload never completes after a failure.
 *
 * S3 checks every part (and the single PUT) against a CRC32 we compute with native zlib as the
 * bytes are copied into the part buffer, while they are still in the CPU cache; a part that
 * arrives different is refused (BadDigest) and sent again. The payload itself is sent unsigned:
 * the SDK would otherwise hash every part once more with SHA-256 for the SigV4 signature (the
 * largest single cost of a backup in the profile, docs/benchmarks.md), which SeaweedFS does not
 * even check. The checksum header is signed, the whole snapshot's SHA-256 is in the manifest, and
 * over HTTPS TLS protects the bytes in transit.
 */
export class S3ObjectUpload extends PartedUpload<string> {
  /** The multipart upload this one created (what a failed backup's clean-up aborts), once S3 named it. */
  private createdUploadId?: string;
  /** CreateMultipartUpload was sent: if `createdUploadId` is still unset, S3 may hold an upload whose id we never heard. */
  private createSent = false;
  private uploadId?: Promise<string>;
  private readonly parts: { PartNumber: number; ETag?: string; ChecksumCRC32: string }[] = [];

  constructor(
    private readonly target: S3UploadTarget,
    opts: UploadOptions,
  ) {
    super(
      opts,
      (partSize) => {
        if (partSize < S3_MIN_PART_SIZE) throw new RangeError("partSize must be at least 5 MiB (an S3 limit)");
      },
      { max: S3_MAX_PARTS, parts: "parts", named: "S3's limit" },
    );
  }

  ownUploads(): OwnUploads {
    return { ids: this.createdUploadId ? [this.createdUploadId] : [], unknown: this.createSent && !this.createdUploadId };
  }

  protected urlOf(key: string): string {
    return `s3://${this.target.bucket}/${key}`;
  }

  protected newCheck(): PartCheck<string> {
    return new Crc32();
  }

  protected sendPart(Key: string, PartNumber: number, body: Buffer, ChecksumCRC32: string): Promise<void> {
    const { signal } = this.opts;
    const { client, bucket: Bucket } = this.target;
    this.createSent = true;
    this.uploadId ??= this.call(
      client.send(
        new CreateMultipartUploadCommand({
          Bucket,
          Key,
          ContentType: this.opts.contentType,
          ...this.target.sse,
          // Declares the per-part checksums below (AWS requires it before parts may carry one).
          ChecksumAlgorithm: "CRC32",
        }),
        { abortSignal: signal },
      ),
    ).then((r) => {
      if (!r.UploadId) throw new OperationError(`S3 returned no UploadId for s3://${Bucket}/${Key}`, { stage: "upload" });
      this.createdUploadId = r.UploadId;
      return r.UploadId;
    });
    return (async () => {
      const UploadId = await this.uploadId!;
      const r = await this.call(
        retryS3Call(
          () =>
            client.send(unsignedPayload(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ContentLength: body.length, ChecksumCRC32 })), {
              abortSignal: signal,
            }),
          {
            attempts: this.opts.partAttempts ?? 5,
            signal,
            onRetry: (err, round, delay) => {
              this.partRetries++;
              this.opts.onPartRetry?.(`part ${PartNumber} failed (${describeS3Error(err)}); sending it again in ${delay} ms (round ${round + 1})`);
            },
          },
        ).catch((err: unknown) => {
          if (signal?.aborted) throw err;
          const code = s3ErrorInfo(err).code;
          throw new OperationError(`S3 refused part ${PartNumber} of s3://${Bucket}/${Key} ${code ? `with ${code} ` : ""}after every retry: ${describeS3Error(err)}`, {
            stage: "upload",
            cause: err,
          });
        }),
      );
      this.parts.push({ PartNumber, ETag: r.ETag, ChecksumCRC32 });
      this.uploaded += body.length;
      this.opts.onUploaded?.(body.length);
    })();
  }

  protected async complete(): Promise<void> {
    try {
      await this.opts.beforeComplete?.();
    } catch (err) {
      // Learn the multipart upload's id before failing, so the clean-up aborts only this upload
      // (ownUploads) rather than every upload of the key.
      await this.uploadId?.catch(() => undefined);
      throw err;
    }
    const { signal } = this.opts;
    const { client, bucket: Bucket } = this.target;
    const Key = await this.key;
    if (this.partNumber === 0) {
      const { body, check } = this.lastBytes();
      const put = await this.call(
        client.send(
          unsignedPayload(
            new PutObjectCommand({
              Bucket,
              Key,
              Body: body,
              ContentLength: body.length,
              ChecksumCRC32: check,
              ContentType: this.opts.contentType,
              ...this.target.sse,
            }),
          ),
          { abortSignal: signal },
        ),
      );
      this.uploaded = body.length;
      this.opts.onUploaded?.(body.length);
      this.result = { key: Key, version: put.VersionId, etag: put.ETag };
      return;
    }
    await this.flushParts();
    const UploadId = await this.uploadId!;
    const parts = [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
    this.blocked = true;
    const done = await this.call(client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }), { abortSignal: signal })).finally(
      () => (this.blocked = false),
    );
    this.result = { key: Key, version: done.VersionId, etag: done.ETag };
  }

  /** Remembers the first S3 failure (see storeError). */
  private call<T>(p: Promise<T>): Promise<T> {
    return p.catch((e: unknown) => {
      this.storeError ??= e;
      throw e;
    });
  }
}

/** A running CRC32 of a part (native zlib). */
class Crc32 implements PartCheck<string> {
  private crc = 0;

  update(bytes: Buffer): void {
    this.crc = crc32(bytes, this.crc);
  }

  digest(): string {
    return crc32Base64(this.crc);
  }
}

/** A CRC32 as S3 writes it in x-amz-checksum-crc32: the 4 bytes big-endian, base64. */
function crc32Base64(crc: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString("base64");
}
