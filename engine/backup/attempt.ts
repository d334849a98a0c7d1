import { OperationError, type VrbError } from "../errors.js";
import type { ObjectUpload, OwnUploads, WrittenObject } from "../storage/object-store.js";
import { StagePipeline } from "./pipeline.js";

/**
 * One backup attempt's bookkeeping: the StagePipeline whose first failure ends the attempt, the
 * stage running now (what a deadline or a failure names), each stage's duration, and the objects
 * written so far (what a failure must clean up).
 */
export class BackupAttempt {
  readonly pass = new StagePipeline();
  readonly durationsMs: Record<string, number> = {};
  /** Written objects in order; cleared once the manifest is stored (nothing to clean up). */
  readonly written: WrittenObject[] = [];
  /** The snapshot's object key, once the archive's meta.json named the raft index. */
  key?: string;
  /** The uploads this attempt started (the snapshot's): a failure aborts these and no other run's. */
  readonly uploads: Pick<ObjectUpload, "ownUploads">[] = [];
  current = "discover";
  private readonly started = Date.now();
  private readonly deadline?: NodeJS.Timeout;

  constructor(deadlineMs?: number) {
    if (deadlineMs) {
      this.deadline = setTimeout(
        () => this.pass.fail(this.current, new OperationError(`backup did not finish within ${Math.round(deadlineMs / 1000)}s (deadlineMs)`, { stage: this.current })),
        deadlineMs,
      );
      this.deadline.unref();
    }
  }

  /** Runs a step as `stage`, racing the pass's first failure, and records its duration. */
  async timed<T>(stage: string, f: () => Promise<T>): Promise<T> {
    const t = Date.now();
    this.current = stage;
    try {
      return await this.pass.race(f());
    } finally {
      this.durationsMs[stage] = Date.now() - t;
    }
  }

  /** Ends the pass (if it still runs): stages aborted, requests cancelled. Returns the first failure. */
  fail(err: unknown): VrbError {
    return this.pass.fail(this.current, err);
  }

  /** The manifest is stored: the attempt succeeded and owns nothing to clean up. */
  succeeded(): void {
    this.durationsMs.total = Date.now() - this.started;
    this.written.length = 0;
  }

  /** The upload ids this attempt owns; `unknown` when a create was sent whose answer never came. */
  ownUploads(): OwnUploads {
    const own = this.uploads.map((u) => u.ownUploads());
    return { ids: own.flatMap((o) => o.ids), unknown: own.some((o) => o.unknown) };
  }

  dispose(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.pass.close();
  }
}
