import { Writable } from "node:stream";
import type { Bucket } from "@google-cloud/storage";
import { OperationError } from "../../errors.js";
import type { ObjectUpload, OwnUploads, UploadOptions, WrittenObject } from "../object-store.js";
import { describeGcsError } from "./client.js";
import { sessionClosed, sessionOpened } from "./sessions.js";

/** Chunks of a resumable upload are multiples of this (a Cloud Storage rule), except the last. */
const CHUNK_UNIT = 256 * 1024;

export interface GcsUploadTarget {
  bucket: Bucket;
  kmsKeyName?: string;
  url(key: string): string;
}

/** Headers of a gaxios response, which may be a Headers object or a plain record. */
type ResponseHeaders = { get(name: string): string | null } | Record<string, string | undefined>;

/** The answer to one chunk: 308 with the Range the session holds, or 200/201 with the object. */
interface ChunkResponse {
  status?: number;
  headers?: ResponseHeaders;
  data?: { generation?: string | number };
}

function header(headers: ResponseHeaders | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof headers.get === "function") return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  return (headers as Record<string, string | undefined>)[name];
}

/**
 * A streamed upload as one resumable upload session. The SDK sends one chunk (partSize rounded up to
 * 256 KiB) at a time and holds it until the server confirmed it, so memory stays about two chunks.
 * Cloud Storage creates the object only when the chunk that names the total size arrives, which the
 * SDK sends only once the stream ended: `end` is held until `beforeComplete` resolved, so a refused
 * or destroyed upload never makes an object. The session stays open until abortUploads cancels it.
 */
export class GcsUpload extends Writable implements ObjectUpload {
  bytes = 0;
  uploaded = 0;
  result?: WrittenObject;
  storeError?: unknown;
  /** The SDK re-sends a failed chunk itself (from the offset the session reports) and does not say so. */
  readonly partRetries = 0;
  private inner?: Writable;
  private sessionUri?: string;
  private startSent = false;
  private blocked = false;
  private completing = false;
  /** The object's generation, from the answer to the last chunk. */
  private finalGeneration?: string;
  private readonly key: Promise<string>;
  private readonly chunkSize: number;

  constructor(
    private readonly target: GcsUploadTarget,
    private readonly opts: UploadOptions,
  ) {
    super({ highWaterMark: 1 << 20 });
    if (opts.partSize < CHUNK_UNIT) throw new RangeError("partSize must be at least 256 KiB (a Cloud Storage chunk)");
    this.chunkSize = Math.ceil(opts.partSize / CHUNK_UNIT) * CHUNK_UNIT;
    this.key = Promise.resolve(opts.key);
    this.key.catch(() => undefined);
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => this.destroy(signal.reason instanceof Error ? signal.reason : new Error("the upload was cancelled"));
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  }

  get waitingForStore(): boolean {
    return this.blocked || this.completing;
  }

  ownUploads(): OwnUploads {
    return { ids: this.sessionUri ? [this.sessionUri] : [], unknown: this.startSent && !this.sessionUri };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send(chunk).then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Every byte is written: only the store (the last chunk, the completion) holds the upload up now.
    this.completing = true;
    this.complete().then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // The last chunk was never sent: the session holds bytes but no object (abortUploads cancels it).
    this.inner?.destroy();
    cb(err);
  }

  private async open(): Promise<Writable> {
    if (this.inner) return this.inner;
    const key = await this.key;
    if (this.destroyed) throw new Error("the upload was cancelled");
    const file = this.target.bucket.file(key, { kmsKeyName: this.target.kmsKeyName });
    const inner = file.createWriteStream({
      resumable: true,
      chunkSize: this.chunkSize,
      // The SDK's own check runs after the object exists and deletes it on a mismatch (which a
      // retention policy refuses); the backup reads the object back and compares its SHA-256 instead.
      validation: false,
      contentType: this.opts.contentType ?? "application/octet-stream",
    });
    inner.on("uri", (uri: string) => {
      this.sessionUri = uri;
      sessionOpened(uri, this.target.bucket.name, key);
    });
    inner.on("response", (resp: ChunkResponse) => this.acknowledged(resp));
    inner.on("error", (err: unknown) => {
      this.storeError ??= err;
    });
    this.inner = inner;
    return inner;
  }

  /** Counts what the session confirmed: a 308's Range (bytes=0-N) while chunks go, everything at the end. */
  private acknowledged(resp: ChunkResponse): void {
    let total: number | undefined;
    if (resp.status === 308) {
      const range = /bytes=0-(\d+)/.exec(header(resp.headers, "range") ?? "");
      // Never more than was handed over (fake-gcs-server's Range ends one byte past what it holds).
      total = range ? Math.min(Number(range[1]) + 1, this.bytes) : 0;
    } else if (resp.status === 200 || resp.status === 201) {
      total = this.bytes;
      if (resp.data?.generation !== undefined) this.finalGeneration = String(resp.data.generation);
    }
    if (total === undefined || total <= this.uploaded) return;
    const delta = total - this.uploaded;
    this.uploaded = total;
    this.opts.onUploaded?.(delta);
  }

  private async send(chunk: Buffer): Promise<void> {
    const inner = await this.open();
    this.startSent = true;
    this.bytes += chunk.length;
    if (!inner.write(chunk)) await this.until(inner, "drain");
  }

  private async complete(): Promise<void> {
    await this.opts.beforeComplete?.();
    const inner = await this.open();
    this.startSent = true;
    inner.end();
    await this.until(inner, "finish");
    if (this.sessionUri) sessionClosed(this.sessionUri);
    const key = await this.key;
    const generation = this.finalGeneration ?? (await this.target.bucket.file(key).getMetadata())[0].generation;
    const version = generation === undefined ? undefined : String(generation);
    this.result = { key, version, etag: version };
  }

  /** Waits for `event` on the SDK's stream, or its error (named with the object's URL). */
  private async until(inner: Writable, event: "drain" | "finish"): Promise<void> {
    this.blocked = true;
    try {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          inner.off("error", failed);
          inner.off("close", closed);
          resolve();
        };
        const failed = (err: unknown) => {
          inner.off(event, done);
          inner.off("close", closed);
          reject(err);
        };
        const closed = () => {
          inner.off(event, done);
          inner.off("error", failed);
          reject(this.storeError ?? new Error("the Cloud Storage upload stream closed"));
        };
        inner.once(event, done);
        inner.once("error", failed);
        if (event === "drain") inner.once("close", closed);
      });
    } catch (err) {
      const key = await this.key;
      throw new OperationError(`upload of ${this.target.url(key)} failed: ${describeGcsError(err)}`, { stage: "upload", cause: err });
    } finally {
      this.blocked = false;
    }
  }
}
