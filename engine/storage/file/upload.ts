import type { FileHandle } from "node:fs/promises";
import { open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Writable } from "node:stream";
import type { ObjectUpload, OwnUploads, UploadOptions, WrittenObject } from "../object-store.js";
import { inDir, syncDir } from "./durable.js";
import { FILE_MODE, etagOf } from "./etag.js";
import { fsFailure } from "./fs-errors.js";
import { uploadName } from "./keys.js";

// A streamed upload into a directory: bytes go to a temporary file beside the final name through
// one fixed buffer of partSize bytes (one write in flight, so memory stays at partSize whatever the
// size), then fsync, beforeComplete, rename into place and fsync of the directory. Until the
// rename nothing lists as an object; a failed or destroyed upload removes its temporary file, and
// a killed process leaves one that listIncompleteUploads reports and abortUploads removes.

export interface FileUploadTarget {
  root: string;
  /** The file a key is stored in (refuses keys that leave the directory). */
  fileOf(key: string): string;
  url(key: string): string;
}

export class FileUpload extends Writable implements ObjectUpload {
  bytes = 0;
  uploaded = 0;
  result?: WrittenObject;
  storeError?: unknown;
  readonly partRetries = 0;
  waitingForStore = false;

  private readonly ids: string[] = [];
  private opening?: Promise<void>;
  private key?: string;
  private file?: string;
  private temp?: string;
  private fh?: FileHandle;
  private buffer?: Buffer;
  private fill = 0;
  /** The file-system step in progress, which a destroy waits for before it removes the temporary file. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly target: FileUploadTarget,
    private readonly opts: UploadOptions,
  ) {
    super({ highWaterMark: Math.min(opts.partSize, 1024 * 1024) });
    if (!(opts.partSize > 0)) throw new RangeError(`partSize must be a positive number of bytes, got ${opts.partSize}`);
    const signal = opts.signal;
    if (signal) {
      const abort = () => this.destroy(reasonOf(signal));
      if (signal.aborted) queueMicrotask(abort);
      else {
        signal.addEventListener("abort", abort, { once: true });
        this.once("close", () => signal.removeEventListener("abort", abort));
      }
    }
  }

  ownUploads(): OwnUploads {
    return { ids: [...this.ids], unknown: false };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.step(async () => {
      await this.ensureOpen();
      this.bytes += chunk.length;
      for (let at = 0; at < chunk.length;) {
        const buffer = (this.buffer ??= Buffer.allocUnsafe(this.opts.partSize));
        const n = chunk.copy(buffer, this.fill, at);
        this.fill += n;
        at += n;
        if (this.fill === buffer.length) await this.flush();
      }
    }, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.step(async () => {
      await this.ensureOpen();
      await this.flush();
      const fh = this.fh!;
      await this.fsStep("fsync", () => fh.sync());
      this.fh = undefined;
      await this.fsStep("close", () => fh.close());
      this.buffer = undefined;
      await this.opts.beforeComplete?.();
      const temp = this.temp!;
      const file = this.file!;
      // A destroy while beforeComplete ran (the caller gave up) must still leave nothing visible.
      if (this.destroyed) throw new Error("the upload was destroyed before it completed");
      const etag = await this.fsStep("complete", async () => {
        const st = await stat(temp, { bigint: true });
        await rename(temp, file);
        await syncDir(dirname(file));
        return etagOf(st);
      });
      this.result = { key: this.key!, etag };
    }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const settle = async () => {
      await this.busy.catch(() => undefined);
      const fh = this.fh;
      this.fh = undefined;
      this.buffer = undefined;
      await fh?.close().catch(() => undefined);
      if (!this.result && this.temp) await unlink(this.temp).catch(() => undefined);
    };
    settle().then(
      () => cb(err),
      () => cb(err),
    );
  }

  /** Runs one step of the stream with `waitingForStore` set, reporting its error to the stream. */
  private step(run: () => Promise<void>, cb: (err?: Error | null) => void): void {
    this.waitingForStore = true;
    const p = run();
    this.busy = p;
    p.then(
      () => {
        this.waitingForStore = false;
        cb();
      },
      (err: unknown) => {
        this.waitingForStore = false;
        cb(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  /** A file-system call; its failure is the upload's storeError (the first one) and names the object's URL. */
  private async fsStep<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      const failure = fsFailure(`${what} of`, this.key === undefined ? this.target.url("") : this.target.url(this.key), err);
      this.storeError ??= failure;
      throw failure;
    }
  }

  private ensureOpen(): Promise<void> {
    return (this.opening ??= (async () => {
      const key = await this.opts.key;
      const file = this.target.fileOf(key);
      this.key = key;
      this.file = file;
      const dir = dirname(file);
      const temp = join(dir, uploadName(basename(file)));
      this.fh = await this.fsStep("upload", () => inDir(this.target.root, dir, () => open(temp, "wx", FILE_MODE)));
      this.temp = temp;
      this.ids.push(basename(temp));
    })());
  }

  private async flush(): Promise<void> {
    const fh = this.fh!;
    while (this.fill > 0) {
      const buffer = this.buffer!;
      const { bytesWritten } = await this.fsStep("write", () => fh.write(buffer, 0, this.fill));
      if (bytesWritten < this.fill) buffer.copy(buffer, 0, bytesWritten, this.fill);
      this.fill -= bytesWritten;
      this.uploaded += bytesWritten;
      this.opts.onUploaded?.(bytesWritten);
    }
  }
}

function reasonOf(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("the upload was cancelled");
}
