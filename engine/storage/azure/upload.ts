import { createHash, type Hash } from "node:crypto";
import { Writable } from "node:stream";
import type { BlockBlobClient } from "@azure/storage-blob";
import { OperationError, type VrbError } from "../../errors.js";
import type { ObjectUpload, OwnUploads, UploadOptions, WrittenObject } from "../object-store.js";
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
export class AzureBlockUpload extends Writable implements ObjectUpload {
  bytes = 0;
  uploaded = 0;
  result?: WrittenObject;
  storeError?: unknown;
  partRetries = 0;
  private readonly uploadId = newUploadId();
  private staging = false;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private current?: Buffer;
  private filled = 0;
  private md5?: Hash;
  private partNumber = 0;
  private readonly blockIds: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private blocked = false;
  private readonly key: Promise<string>;
  /** Aborted by destroy(): requests in flight stop, so no block of a cancelled upload keeps arriving. */
  private readonly cancel = new AbortController();
  private readonly signal: AbortSignal;

  constructor(
    private readonly target: BlockUploadTarget,
    private readonly opts: UploadOptions,
  ) {
    // Chunks are copied into the part buffers at once; a deep queue here would only add memory.
    super({ highWaterMark: 1 << 20 });
    // Not 1 byte: a 1-byte block is what an abort leaves in place of a block (block-ids.ts TOMBSTONE).
    if (!(opts.partSize >= 2 && opts.partSize <= MAX_BLOCK_BYTES)) throw new RangeError(`partSize must be between 2 bytes and ${MAX_BLOCK_BYTES} (Azure's largest block)`);
    if (opts.queueSize < 1) throw new RangeError("queueSize must be at least 1");
    this.key = Promise.resolve(opts.key);
    this.key.catch(() => undefined);
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.cancel.signal]) : this.cancel.signal;
  }

  get waitingForStore(): boolean {
    return this.blocked;
  }

  ownUploads(): OwnUploads {
    // The id is made here, before any block is sent: there is no answer to wait for, so never unknown.
    return { ids: this.staging ? [this.uploadId] : [], unknown: false };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.take(chunk).then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finish().then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.cancel.abort(new Error("the upload was cancelled"));
    // Requests still in flight hold their own reference to their buffer until they settle.
    this.free.length = 0;
    this.current = undefined;
    cb(err);
  }

  private async take(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      this.current ??= await this.buffer();
      this.md5 ??= createHash("md5");
      const n = chunk.copy(this.current, this.filled, off);
      this.md5.update(this.current.subarray(this.filled, this.filled + n));
      this.filled += n;
      off += n;
      this.bytes += n;
      if (this.filled === this.opts.partSize) await this.send();
    }
  }

  /** A free part buffer; waits for a block in flight to settle when all are in use. */
  private async buffer(): Promise<Buffer> {
    if (this.destroyed) throw new Error("the upload was cancelled");
    const ready = this.free.pop();
    if (ready) return ready;
    if (this.allocated <= this.opts.queueSize) {
      this.allocated++;
      // Unsafe is fine: only the filled prefix of a buffer is ever sent.
      return Buffer.allocUnsafe(this.opts.partSize);
    }
    await this.waitForSlot(this.inFlight.size - 1);
    return this.buffer();
  }

  private async waitForSlot(maxInFlight: number): Promise<void> {
    this.blocked = true;
    try {
      while (this.inFlight.size > maxInFlight) await Promise.race(this.inFlight);
      // A block that failed while nobody was waiting on it is no longer in flight: never skip it.
      if (this.storeError !== undefined) throw this.storeError;
    } finally {
      this.blocked = false;
    }
  }

  /** Stages the current buffer as the next block once fewer than queueSize blocks are in flight. */
  private async send(): Promise<void> {
    const buf = this.current!;
    const body = buf.subarray(0, this.filled);
    const md5 = this.md5!.digest();
    this.current = undefined;
    this.filled = 0;
    this.md5 = undefined;
    await this.waitForSlot(this.opts.queueSize - 1);
    const part = ++this.partNumber;
    const key = await this.key;
    const url = this.target.url(key);
    if (part > MAX_BLOCKS) {
      throw this.fail(
        new OperationError(`the upload of ${url} needs more than ${MAX_BLOCKS} blocks of ${this.opts.partSize} bytes (Azure's limit): raise the part size`, { stage: "upload" }),
      );
    }
    const id = blockId(this.uploadId, part);
    this.blockIds[part - 1] = id;
    this.staging = true;
    const blob = this.target.blob(key);
    const { signal } = this;
    const staged: Promise<void> = (async () => {
      try {
        // Retried with the same buffer (it returns to the free list only once the block settled):
        // retries cost time, never memory.
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
    })().finally(() => {
      this.inFlight.delete(staged);
      if (!this.destroyed) this.free.push(buf);
    });
    // Failures surface through waitForSlot / finish; never as an unhandled rejection.
    staged.catch(() => undefined);
    this.inFlight.add(staged);
  }

  private async finish(): Promise<void> {
    await this.opts.beforeComplete?.();
    // Destroyed while the check ran: the caller gave up on this upload, so nothing may appear.
    if (this.destroyed) throw new Error("the upload was cancelled");
    const key = await this.key;
    const url = this.target.url(key);
    const blob = this.target.blob(key);
    const headers = this.opts.contentType ? { blobContentType: this.opts.contentType } : undefined;
    const { signal } = this;
    if (this.partNumber === 0) {
      const body = this.current ? this.current.subarray(0, this.filled) : Buffer.alloc(0);
      const md5 = (this.md5 ?? createHash("md5")).digest();
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
    // An exact multiple of partSize leaves nothing for a last block.
    if (this.filled > 0) await this.send();
    await this.waitForSlot(0);
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
