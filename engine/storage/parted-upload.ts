import { Writable } from "node:stream";
import { OperationError } from "../errors.js";
import { formatBytes } from "../progress.js";
import type { ObjectUpload, OwnUploads, UploadOptions, WrittenObject } from "./object-store.js";

/** The checksum a store wants with each part, computed as the bytes are copied into the part buffer. */
export interface PartCheck<T> {
  update(bytes: Buffer): unknown;
  digest(): T;
}

/**
 * The fixed-memory part machinery of a store that takes an object in parts (S3's multipart upload,
 * Azure's staged blocks): at most queueSize + 1 part buffers, allocated once and reused, at most
 * queueSize parts in flight, and writes wait while every buffer is full or in flight. A store
 * supplies only how one part is sent (sendPart) and how the upload completes (complete). Each part's
 * checksum (newCheck) is computed as its bytes are copied in, while they are still in the CPU cache.
 *
 * storeError is the first store failure; a store's sendPart and complete set it, and every wait for a
 * slot throws it, so a part that failed while nobody was waiting on it is never skipped.
 *
 * A stream's size is unknown until it ends, and a store limits the parts of one object (S3: 10,000).
 * So the part size doubles every `partsPerSize` parts (a fifth of the store's limit unless the
 * options say otherwise): a snapshot within the first fifth goes at the configured size and memory,
 * and the limit is reached only at 31 times what a fixed size allows (S3 at 8 MiB: 484 GiB instead
 * of 78). Memory grows with the part size, and only past the first fifth (S3 at 8 MiB: 15.6 GiB).
 */
export abstract class PartedUpload<T> extends Writable implements ObjectUpload {
  bytes = 0;
  uploaded = 0;
  result?: WrittenObject;
  storeError?: unknown;
  partRetries = 0;
  /** True while writes wait for the store; a store's complete sets it around its final request. */
  protected blocked = false;
  private completing = false;
  /** Parts started so far (0 at completion means the object goes in a single request). */
  protected partNumber = 0;
  protected readonly key: Promise<string>;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private current?: Buffer;
  private filled = 0;
  private check?: PartCheck<T>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly partsPerSize: number;

  /**
   * `checkPartSize` throws the store's own RangeError before queueSize is checked (the order callers
   * have always seen); `partLimit` is the store's limit on the parts of one object, and how its
   * messages name them (e.g. "parts (S3's limit)").
   */
  constructor(
    protected readonly opts: UploadOptions,
    checkPartSize: (partSize: number) => void,
    private readonly partLimit: { max: number; parts: string; named: string },
  ) {
    // Chunks are copied into the part buffers at once; a deep queue here would only add memory.
    super({ highWaterMark: 1 << 20 });
    checkPartSize(opts.partSize);
    if (opts.queueSize < 1) throw new RangeError("queueSize must be at least 1");
    this.partsPerSize = opts.partsPerSize ?? Math.floor(partLimit.max / 5);
    if (!(this.partsPerSize >= 1)) throw new RangeError("partsPerSize must be at least 1");
    this.key = Promise.resolve(opts.key);
    this.key.catch(() => undefined);
  }

  get waitingForStore(): boolean {
    return this.blocked || this.completing;
  }

  abstract ownUploads(): OwnUploads;

  /** The object's URL in the store's scheme, for messages. */
  protected abstract urlOf(key: string): string;

  /** A fresh checksum for the next part. */
  protected abstract newCheck(): PartCheck<T>;

  /**
   * Starts sending one part and returns the promise of its acknowledgement (not awaited here: the
   * part stays in flight). Not async: a refusal before the part is under way (a limit) throws at
   * once, and the part's buffer is then never reused. `body` is a view of a pooled buffer that
   * returns to the pool only once the returned promise settled, so retries cost time, never memory.
   */
  protected abstract sendPart(key: string, part: number, body: Buffer, check: T): Promise<void>;

  /** Completes the object once every byte was written (flushParts / lastBytes give what is left). */
  protected abstract complete(): Promise<void>;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.take(chunk).then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Every byte is written: from here on only the store (the last parts, the completion) holds the
    // upload up, and a stall watchdog must name it, not the source that has ended.
    this.completing = true;
    this.complete().then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Drop the buffers now: requests still in flight hold their own reference until they settle.
    this.free.length = 0;
    this.current = undefined;
    cb(err);
  }

  /** The size of part `part` (1-based): the configured size, doubled every partsPerSize parts. */
  private partSizeOf(part: number): number {
    return this.opts.partSize * 2 ** Math.floor((part - 1) / this.partsPerSize);
  }

  /** The bytes of an object below one part, for a single request, and their checksum. */
  protected lastBytes(): { body: Buffer; check: T } {
    const body = this.current ? this.current.subarray(0, this.filled) : Buffer.alloc(0);
    return { body, check: (this.check ?? this.newCheck()).digest() };
  }

  /** Sends the last, partial part (an exact multiple of partSize leaves none: stores refuse empty parts) and waits for every part. */
  protected async flushParts(): Promise<void> {
    if (this.filled > 0) await this.send();
    await this.waitForSlot(0);
  }

  private async take(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      this.current ??= await this.buffer();
      this.check ??= this.newCheck();
      const n = chunk.copy(this.current, this.filled, off);
      this.check.update(this.current.subarray(this.filled, this.filled + n));
      this.filled += n;
      off += n;
      this.bytes += n;
      if (this.filled === this.current.length) await this.send();
    }
  }

  /** A free buffer of the next part's size; waits for a part in flight to settle when all are in use. */
  private async buffer(): Promise<Buffer> {
    if (this.destroyed) throw new Error("the upload was cancelled");
    const size = this.partSizeOf(this.partNumber + 1);
    let ready = this.free.pop();
    // Buffers of a smaller part size than the next part's are let go (sizes only grow).
    while (ready && ready.length < size) {
      this.allocated--;
      ready = this.free.pop();
    }
    if (ready) return ready;
    if (this.allocated <= this.opts.queueSize) {
      this.allocated++;
      // Unsafe is fine: only the filled prefix of a buffer is ever sent.
      return Buffer.allocUnsafe(size);
    }
    await this.waitForSlot(this.inFlight.size - 1);
    return this.buffer();
  }

  private async waitForSlot(maxInFlight: number): Promise<void> {
    this.blocked = true;
    try {
      while (this.inFlight.size > maxInFlight) await Promise.race(this.inFlight);
      // A part that failed while nobody was waiting on it is no longer in flight: never skip it.
      if (this.storeError !== undefined) throw this.storeError;
    } finally {
      this.blocked = false;
    }
  }

  /** Starts the upload of the current part once fewer than queueSize parts are in flight. */
  private async send(): Promise<void> {
    const buf = this.current!;
    const body = buf.subarray(0, this.filled);
    const check = this.check!.digest();
    this.current = undefined;
    this.filled = 0;
    this.check = undefined;
    await this.waitForSlot(this.opts.queueSize - 1);
    const part = ++this.partNumber;
    const key = await this.key;
    const { max, parts, named } = this.partLimit;
    if (part > max) {
      const err = new OperationError(
        `the upload of ${this.urlOf(key)} needs more than ${max} ${parts} (${named}), even with ${parts} grown to ${formatBytes(this.partSizeOf(max))}`,
        {
          stage: "upload",
        },
      );
      this.storeError ??= err;
      throw err;
    }
    const sent: Promise<void> = this.sendPart(key, part, body, check).finally(() => {
      this.inFlight.delete(sent);
      if (!this.destroyed) this.free.push(buf);
    });
    // Failures surface through waitForSlot / complete; never as an unhandled rejection.
    sent.catch(() => undefined);
    this.inFlight.add(sent);
  }
}
