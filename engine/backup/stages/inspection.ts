import type { Writable } from "node:stream";
import { IntegrityError } from "../../errors.js";
import { createArchiveInspector, type ArchiveInspectorOptions, type ArchiveReport, type RaftSnapshotMeta } from "../../snapshot/archive.js";
import type { Stage } from "../pipeline.js";
import { writeOrWait } from "./writable.js";

export const ARCHIVE_CHECK_STAGE = "archive check";

/**
 * Bytes gathered before one write to the archive check. zlib's cost is per write as much as per
 * byte (each write is a round trip to libuv's thread pool), and Vault's snapshot stream arrives in
 * chunks of ~22 KiB on average (many of 1-2 KiB): gunzip took 0.65-0.73 CPU-s per 256 MiB fed
 * that way, 0.49-0.58 fed in 128 KiB-1 MiB writes (docs/benchmarks.md).
 */
export const ARCHIVE_CHECK_WRITE_BYTES = 256 * 1024;

/**
 * The archive check as the bytes pass (archive.ts): gunzip + untar, every entry against the
 * archive's own SHA256SUMS, SHA256SUMS.sealed present, meta.json read early (`meta`, for the
 * object key). Every failure of this stage is the inspector's verdict, an IntegrityError, never
 * the raw zlib or tar error that made the inspector stop reading.
 */
export class ArchiveInspectionStage implements Stage {
  readonly name = ARCHIVE_CHECK_STAGE;
  /** The archive's meta.json, a few KiB into the stream (rejects with the verdict if there is none). */
  readonly meta: Promise<RaftSnapshotMeta>;
  /** The verdict: the report, or an IntegrityError (stage "archive check"). */
  readonly result: Promise<ArchiveReport>;
  readonly failed: Promise<ArchiveReport>;
  private readonly input: Writable;
  /** Batch buffers zlib is done with (allocated once, reused: a fresh one per batch raised peak RSS by up to 20 MiB). */
  private readonly free: Buffer[] = [];
  private batch?: Buffer;
  private batched = 0;
  /** Chunks go through one by one until meta.json is read, so the raft index is known as early as before. */
  private metaRead = false;

  /** `opts.observe` sees entries' bytes as they are hashed (the inventory's reader of state.bin). */
  constructor(opts: ArchiveInspectorOptions = {}) {
    const inspector = createArchiveInspector(opts);
    this.input = inspector.input;
    this.meta = inspector.meta;
    this.result = inspector.result;
    this.failed = inspector.result;
    this.meta.then(
      () => (this.metaRead = true),
      () => undefined,
    );
  }

  write(chunk: Buffer): void | Promise<void> {
    if (!this.metaRead) return this.pass(chunk);
    return this.gather(chunk, 0);
  }

  async finish(): Promise<void> {
    if (this.batched > 0) await this.passBatch();
    this.input.end();
    await this.result;
  }

  abort(): void {
    this.batch = undefined;
    this.free.length = 0;
    this.input.destroy();
  }

  /** Copies `chunk` from `from` into the batch, passing each batch on as it fills. */
  private gather(chunk: Buffer, from: number): void | Promise<void> {
    this.batch ??= this.free.pop() ?? Buffer.allocUnsafe(ARCHIVE_CHECK_WRITE_BYTES);
    const n = chunk.copy(this.batch, this.batched, from);
    this.batched += n;
    if (this.batched < ARCHIVE_CHECK_WRITE_BYTES) return;
    const wait = this.passBatch();
    const rest = from + n;
    if (rest === chunk.length) return wait;
    return wait ? wait.then(() => this.gather(chunk, rest)) : this.gather(chunk, rest);
  }

  private passBatch(): void | Promise<void> {
    const whole = this.batch!;
    const bytes = whole.subarray(0, this.batched);
    this.batch = undefined;
    this.batched = 0;
    // zlib holds the bytes until it has inflated them; then the buffer serves again.
    return this.pass(bytes, () => this.free.push(whole));
  }

  private pass(bytes: Buffer, done?: () => void): void | Promise<void> {
    const wait = writeOrWait(this.input, bytes, "the archive check stopped reading the snapshot", done);
    return wait && wait.catch(() => this.verdict());
  }

  /** The inspector stopped reading: its own error says why (it always settles once its input is gone). */
  private async verdict(): Promise<never> {
    await this.result;
    throw new IntegrityError("the archive check stopped reading the snapshot before it ended", { stage: this.name });
  }
}
