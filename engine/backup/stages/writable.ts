import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import type { Stage } from "../pipeline.js";

/**
 * Writes `chunk` to `w`, honouring its backpressure: nothing to wait for when it took the chunk,
 * else a promise that settles on 'drain'. A writable that is (or gets) destroyed never drains: the
 * promise then rejects with its error at once instead of waiting (a rejected archive check once
 * stalled a whole verify this way). `written` is called once the writable is done with the chunk
 * (not on a failure): the caller may then reuse its buffer.
 */
export function writeOrWait(w: Writable, chunk: Buffer, stopped: string, written?: () => void): void | Promise<void> {
  if (w.destroyed) return Promise.reject(w.errored ?? new Error(stopped));
  const onWritten = written && ((err?: Error | null) => (err ? undefined : written()));
  if (w.write(chunk, onWritten)) return;
  return new Promise<void>((resolve, reject) => {
    const settle = () => {
      w.off("drain", settle);
      w.off("close", settle);
      if (w.destroyed) reject(w.errored ?? new Error(stopped));
      else resolve();
    };
    w.on("drain", settle);
    w.on("close", settle);
  });
}

/**
 * A stage that writes every chunk to a Node Writable (a file, an upload sink): backpressure from
 * the writable, its errors as the stage's, `finish` when it has flushed everything.
 */
export class WritableStage implements Stage {
  /** Rejects when the writable fails (also between writes); resolves once it finished. */
  readonly failed: Promise<void>;

  /** `explain` turns the writable's error into the one to report (e.g. the first S3 error behind it). */
  constructor(
    readonly name: string,
    protected readonly writable: Writable,
    private readonly explain: (err: unknown) => unknown = (err) => err,
  ) {
    // Also the writable's 'error' listener: an error with none would crash the process.
    this.failed = finished(writable).catch((e: unknown) => {
      throw this.explain(e);
    });
    this.failed.catch(() => undefined);
  }

  write(chunk: Buffer): void | Promise<void> {
    const wait = writeOrWait(this.writable, chunk, `${this.name}: the stream was closed before the snapshot ended`);
    return (
      wait &&
      wait.catch((e: unknown) => {
        throw this.explain(e);
      })
    );
  }

  async finish(): Promise<void> {
    this.writable.end();
    await this.failed;
  }

  abort(): void {
    this.writable.destroy();
  }
}
