import type { Encryptor } from "../../crypto/encryptor.js";
import { stagedError, type Stage } from "../pipeline.js";

/**
 * Plaintext held between the pass and the encryptor before writes wait (backpressure): four age
 * chunks. Small on purpose: chunks that wait here outlive young-generation collections, get
 * promoted, and their buffers come back only at a full collection. With 1 MiB an age backup of
 * 1.0 GiB peaked at 162-169 MiB RSS, with 256 KiB at 145-146 MiB, at the same CPU and pace
 * (docs/benchmarks.md, "an encrypted backup takes one digest").
 */
const PLAINTEXT_QUEUE_BYTES = 256 * 1024;

/**
 * Client-side encryption as a pipeline stage ("encrypt"): takes the plaintext chunks of the pass,
 * feeds them to the encryptor (age or OpenPGP, each a web stream pulling 64 KiB at a time) and
 * hands every ciphertext chunk to the inner stages (e.g. a hashing stage for the stored object's
 * SHA-256, and the upload) in order, waiting for them (their backpressure is the pass's). Memory is
 * bounded by the queue below plus the encryptor's own chunk. The plaintext goes nowhere else.
 */
export class EncryptionStage implements Stage {
  readonly name = "encrypt";
  readonly failed: Promise<never>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private readonly pump: Promise<void>;
  private wake?: () => void;
  private reader?: ReadableStreamDefaultReader<Uint8Array>;
  private stopped?: Error;

  constructor(
    encryptor: Encryptor,
    private readonly inner: readonly Stage[],
  ) {
    const plain = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.controller = c;
        },
        // The encryptor wants more: a write waiting for room may go on.
        pull: () => this.release(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: PLAINTEXT_QUEUE_BYTES }),
    );
    this.pump = this.forward(encryptor, plain);
    this.pump.catch(() => undefined);
    this.failed = new Promise<never>((_, reject) => {
      this.pump.catch(reject);
      for (const s of inner) s.failed?.then(undefined, (e: unknown) => reject(stagedError(s.name, e)));
    });
    this.failed.catch(() => undefined);
  }

  /** Ciphertext out of the encryptor, into every inner stage, one chunk at a time. */
  private async forward(encryptor: Encryptor, plain: ReadableStream<Uint8Array>): Promise<void> {
    const cipher = await encryptor.encrypt(plain);
    this.reader = cipher.getReader();
    if (this.stopped) throw this.stopped;
    for (;;) {
      const { done, value } = await this.reader.read();
      if (done) return;
      if (this.stopped) throw this.stopped;
      const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const waits: Promise<void>[] = [];
      for (const s of this.inner) {
        const r = named(s, () => s.write(chunk));
        if (r) waits.push(r);
      }
      if (waits.length) await Promise.all(waits);
    }
  }

  private release(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  write(chunk: Buffer): void | Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped);
    this.controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if ((this.controller.desiredSize ?? 0) > 0) return;
    // Full: wait until the encryptor pulls again (or the stage is aborted; the pass reports why).
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  async finish(): Promise<void> {
    this.controller.close();
    await this.pump;
    for (const s of this.inner) await named(s, () => s.finish());
  }

  abort(reason: Error): void {
    if (this.stopped) return;
    this.stopped = reason;
    try {
      this.controller.error(reason);
    } catch {
      // already closed or errored
    }
    this.reader?.cancel(reason).catch(() => undefined);
    this.release();
    for (const s of this.inner) {
      try {
        s.abort(reason);
      } catch {
        // abort must not throw
      }
    }
  }
}

/** Runs a call of an inner stage so that its failure names that stage ("upload"), not "encrypt". */
function named(s: Stage, f: () => void | Promise<void>): void | Promise<void> {
  let r: void | Promise<void>;
  try {
    r = f();
  } catch (e) {
    throw stagedError(s.name, e);
  }
  return (
    r &&
    r.catch((e: unknown) => {
      throw stagedError(s.name, e);
    })
  );
}
