import type { Writable } from "node:stream";
import { IntegrityError } from "../../errors.js";
import { createArchiveInspector, type ArchiveInspectorOptions, type ArchiveReport, type RaftSnapshotMeta } from "../../snapshot/archive.js";
import type { Stage } from "../pipeline.js";
import { writeOrWait } from "./writable.js";

export const ARCHIVE_CHECK_STAGE = "archive check";

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

  /** `opts.observe` sees entries' bytes as they are hashed (the inventory's reader of state.bin). */
  constructor(opts: ArchiveInspectorOptions = {}) {
    const inspector = createArchiveInspector(opts);
    this.input = inspector.input;
    this.meta = inspector.meta;
    this.result = inspector.result;
    this.failed = inspector.result;
  }

  write(chunk: Buffer): void | Promise<void> {
    const wait = writeOrWait(this.input, chunk, "the archive check stopped reading the snapshot");
    return wait && wait.catch(() => this.verdict());
  }

  async finish(): Promise<void> {
    this.input.end();
    await this.result;
  }

  abort(): void {
    this.input.destroy();
  }

  /** The inspector stopped reading: its own error says why (it always settles once its input is gone). */
  private async verdict(): Promise<never> {
    await this.result;
    throw new IntegrityError("the archive check stopped reading the snapshot before it ended", { stage: this.name });
  }
}
