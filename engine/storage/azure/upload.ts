import { createHash } from "node:crypto";
import type { BlockBlobClient } from "@azure/storage-blob";
import { OperationError, type VrbError } from "../../errors.js";
import type { OwnUploads, UploadOptions } from "../object-store.js";
import { PartedUpload, type PartCheck } from "../parted-upload.js";
import { blockId, MAX_BLOCKS, newUploadId } from "./block-ids.js";
import { azureErrorInfo, credentialsProblem, describeAzureError, retryAzureCall, storeFailure } from "./errors.js";

/** What an upload needs of its store. */
export interface BlockUploadTarget {
  blob(key: string): BlockBlobClient;
  url(key: string): string;
  encryptionScope?: string;
}

/** Azure's largest block (Put Block, service version 2019-12-12 and later). */
const MAX_BLOCK_BYTES = 4000 * 1024 * 1024;

/**
 * A streamed upload to one block blob. Each part is staged as a block (invisible, named with this
 * upload's id, block-ids.ts) from one of at most queueSize + 1 buffers allocated once and reused;
 * writes wait while every buffer is full or in flight. Only after `beforeComplete` resolved is the
 * block list committed, which is the moment the blob appears: a rejected check, a destroyed stream
 * or a failed block leave nothing visible, only uncommitted blocks (what abortUploads empties;
 * docs/storage-azure.md). Below one part the bytes go in a single Put Blob, also only after
 * `beforeComplete`.
 *
 * Every block carries the MD5 of its bytes, computed as they are copied into the buffer: Azure
 * refuses a block that arrives different (Md5Mismatch) and it is sent again.
 */
export class AzureBlockUpload extends PartedUpload<Buffer> {
  private readonly uploadId = newUploadId();
  private staging = false;
  private readonly blockIds: string[] = [];
  /** Aborted by destroy(): requests in flight stop, so no block of a cancelled upload keeps arriving. */
  private readonly cancel = new AbortController();
  private readonly signal: AbortSignal;

  constructor(
    private readonly target: BlockUploadTarget,
    opts: UploadOptions,
  ) {
    super(
      opts,
      (partSize) => {
        // Not 1 byte: a 1-byte block is what an abort leaves in place of a block (block-ids.ts TOMBSTONE).
        if (!(partSize >= 2 && partSize <= MAX_BLOCK_BYTES)) throw new RangeError(`partSize must be between 2 bytes and ${MAX_BLOCK_BYTES} (Azure's largest block)`);
      },
      { max: MAX_BLOCKS, parts: "blocks", named: "Azure's limit" },
    );
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.cancel.signal]) : this.cancel.signal;
  }

  ownUploads(): OwnUploads {
    // The id is made here, before any block is sent: there is no answer to wait for, so never unknown.
    return { ids: this.staging ? [this.uploadId] : [], unknown: false };
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.cancel.abort(new Error("the upload was cancelled"));
    super._destroy(err, cb);
  }

  protected urlOf(key: string): string {
    return this.target.url(key);
  }

  protected newCheck(): PartCheck<Buffer> {
    return createHash("md5");
  }

  /** Stages one part as the next block. */
  protected sendPart(key: string, part: number, body: Buffer, md5: Buffer): Promise<void> {
    const url = this.target.url(key);
    const id = blockId(this.uploadId, part);
    this.blockIds[part - 1] = id;
    this.staging = true;
    const blob = this.target.blob(key);
    const { signal } = this;
    return (async () => {
      try {
        await retryAzureCall(
          () =>
            blob.stageBlock(id, body, body.length, {
              abortSignal: signal,
              transactionalContentMD5: md5,
              encryptionScope: this.target.encryptionScope,
            }),
          {
            attempts: this.opts.partAttempts ?? 5,
            signal,
            onRetry: (err, round, delay) => {
              this.partRetries++;
              this.opts.onPartRetry?.(`block ${part} failed (${describeAzureError(err)}); sending it again in ${delay} ms (round ${round + 1})`);
            },
          },
        );
      } catch (err) {
        if (signal.aborted) throw err;
        const code = azureErrorInfo(err).code;
        throw this.fail(
          credentialsProblem(err, url) ??
            new OperationError(`Azure refused block ${part} of ${url} ${code ? `with ${code} ` : ""}after every retry: ${describeAzureError(err)}`, {
              stage: "upload",
              cause: err,
            }),
        );
      }
      this.uploaded += body.length;
      this.opts.onUploaded?.(body.length);
    })();
  }

  protected async complete(): Promise<void> {
    await this.opts.beforeComplete?.();
    // Destroyed while the check ran: the caller gave up on this upload, so nothing may appear.
    if (this.destroyed) throw new Error("the upload was cancelled");
    const key = await this.key;
    const url = this.target.url(key);
    const blob = this.target.blob(key);
    const headers = this.opts.contentType ? { blobContentType: this.opts.contentType } : undefined;
    const { signal } = this;
    if (this.partNumber === 0) {
      const { body, check: md5 } = this.lastBytes();
      this.blocked = true;
      try {
        const put = await blob.upload(body, body.length, {
          abortSignal: signal,
          blobHTTPHeaders: headers,
          encryptionScope: this.target.encryptionScope,
          transactionalContentMD5: md5,
        });
        this.uploaded = body.length;
        this.opts.onUploaded?.(body.length);
        this.result = { key, version: put.versionId, etag: put.etag };
      } catch (err) {
        if (signal.aborted) throw err;
        throw this.fail(storeFailure("the upload of", url, err, "upload"));
      } finally {
        this.blocked = false;
      }
      return;
    }
    await this.flushParts();
    if (this.destroyed) throw new Error("the upload was cancelled");
    this.blocked = true;
    try {
      const done = await blob.commitBlockList(this.blockIds, {
        abortSignal: signal,
        blobHTTPHeaders: headers,
        encryptionScope: this.target.encryptionScope,
      });
      this.result = { key, version: done.versionId, etag: done.etag };
    } catch (err) {
      if (signal.aborted) throw err;
      throw this.fail(storeFailure("committing the blocks of", url, err, "upload"));
    } finally {
      this.blocked = false;
    }
  }

  /** Remembers the first store failure (see storeError) and returns it to throw. */
  private fail(err: VrbError): VrbError {
    this.storeError ??= err;
    return err;
  }
}
