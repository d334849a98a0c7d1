import { OperationError, type VrbError } from "../errors.js";
import type { Progress } from "../progress.js";
import type { Destination, StoreType } from "../storage/destination.js";
import { storeLabel } from "../storage/label.js";
import type { ObjectStore, WrittenObject } from "../storage/object-store.js";
import { cleanUpFailedBackup } from "./cleanup.js";
import { stagedError, withStage, type Stage } from "./pipeline.js";
import type { UploadStage } from "./stages/upload.js";

// Off-site copies (policy `copies`): each copy is written in the same pass as the primary, from the
// same chunks, but a copy that fails must never fail the pass. A copy's upload is wrapped in a
// DetachableStage: its errors detach it (its own upload aborted, its own requests cancelled) and
// the pass goes on for the others. The primary's upload is not wrapped: it fails the backup.

/**
 * The part size and parts in flight of a copy's upload. An Azure copy stages blocks of half the
 * primary's part size (4 MiB by default) from as many buffers, so its buffers cost (queueSize + 1)
 * x 4 MiB instead of x 8 MiB: a copy is one more set of buffers on top of the primary's, and the
 * backup's memory budget is the same with or without one (docs/benchmarks.md, "One copy"). Azure
 * takes blocks of any size and 50,000 of them, so a half-size block still holds anything the
 * primary can (S3: 10,000 parts). Other stores keep the primary's shape: S3 refuses parts under
 * 5 MiB, and Cloud Storage sends one chunk at a time, so a smaller one costs round trips.
 */
export function copyUploadShape(type: StoreType, partSize: number, queueSize: number): { partSize: number; queueSize: number } {
  return type === "azure" ? { partSize: Math.ceil(partSize / 2), queueSize } : { partSize, queueSize };
}

/** The field of a destination that names its container, for "check copies.N.<field>" messages. */
export function containerFieldOf(type: StoreType): "bucket" | "container" | "path" {
  return type === "azure" ? "container" : type === "file" ? "path" : "bucket";
}

/** One copy of one backup attempt: its store, what it wrote, and why it was detached (if it was). */
export class CopyTarget {
  /** The copy's snapshot key (its own prefix), once the archive's meta.json named the raft index. */
  key?: string;
  /** Objects written to this copy, in order (removed if it is detached). */
  readonly written: WrittenObject[] = [];
  stage?: DetachableStage;
  private failure?: VrbError;
  /** Cancels this copy's requests only (the pass's signal cancels everyone's). */
  readonly controller = new AbortController();

  constructor(
    readonly name: string,
    /** Index in the policy's `copies` (for field names). */
    readonly index: number,
    readonly destination: Destination,
    readonly store: ObjectStore,
  ) {}

  get stageName(): string {
    return `copy ${this.name}`;
  }

  get error(): VrbError | undefined {
    return this.failure;
  }

  get live(): boolean {
    return !this.failure;
  }

  /** Marks the copy failed (the first reason wins) and cancels its requests; the caller cleans up. */
  detach(err: unknown): VrbError {
    if (this.failure) return this.failure;
    const e = stagedError(this.stageName, err);
    this.failure = e.stage === this.stageName ? e : withStage(e, this.stageName);
    this.controller.abort(this.failure);
    this.stage?.abortInner(this.failure);
    return this.failure;
  }

  /** Adds clean-up notes (what could not be removed) to the copy's error. */
  noteCleanup(notes: string[]): void {
    if (!notes.length || !this.failure) return;
    this.failure = withStage(this.failure, this.stageName, `${this.failure.message}\n${notes.join("\n")}`);
  }
}

/**
 * A copy's upload as a pass stage that never fails the pass: a store error, a refusal or a stall
 * (no byte acknowledged for `stallMs` while the pass waits for it) detaches the copy instead. A
 * detached copy takes every later chunk at once, so the slowest LIVE destination sets the pace.
 */
export class DetachableStage implements Stage {
  readonly name: string;
  private idle?: NodeJS.Timeout;

  constructor(
    readonly copy: CopyTarget,
    readonly inner: UploadStage,
    private readonly stallMs: number,
  ) {
    this.name = copy.stageName;
    copy.stage = this;
    inner.failed.then(undefined, (e: unknown) => void this.copy.detach(e));
  }

  /** The store acknowledged bytes: the copy is moving. */
  touch(): void {
    if (this.idle) this.idle.refresh();
  }

  write(chunk: Buffer): void | Promise<void> {
    if (!this.copy.live) return;
    let wait: void | Promise<void>;
    try {
      wait = this.inner.write(chunk);
    } catch (e) {
      this.copy.detach(e);
      return;
    }
    return wait && this.guard(wait);
  }

  async finish(): Promise<void> {
    if (!this.copy.live) return;
    await this.guard(Promise.resolve().then(() => this.inner.finish()));
  }

  abort(reason: Error): void {
    this.stopIdle();
    this.abortInner(reason);
  }

  /** Destroys the copy's upload (its own only); called on detach and when the whole pass fails. */
  abortInner(_reason?: Error): void {
    this.stopIdle();
    try {
      this.inner.abort();
    } catch {
      // abort must not throw
    }
  }

  /** Waits for `p` unless the copy fails or stalls first; never rejects. */
  private async guard(p: Promise<void>): Promise<void> {
    const stalled = new Promise<void>((resolve) => {
      this.idle = setTimeout(() => {
        const store = this.copy.store;
        this.copy.detach(new OperationError(`${storeLabel(store.type)} (${store.url()}) accepted no data for ${Math.round(this.stallMs / 1000)}s`, { stage: this.copy.stageName }));
        resolve();
      }, this.stallMs);
    });
    const detached = new Promise<void>((resolve) => {
      if (this.copy.controller.signal.aborted) resolve();
      else this.copy.controller.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    try {
      await Promise.race([p.catch((e: unknown) => void this.copy.detach(e)), stalled, detached]);
    } finally {
      this.stopIdle();
    }
  }

  private stopIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
  }
}

/** A copy's clean-up after it was detached, or after the primary failed: its upload aborted, its objects removed. */
export async function cleanUpCopy(copy: CopyTarget, progress: Progress): Promise<string[]> {
  if (!copy.key) return [];
  const own = copy.stage?.inner.upload.ownUploads();
  // A copy's store may be the thing that is gone: do not hold the backup for a minute on it.
  try {
    return await cleanUpFailedBackup(copy.store, copy.key, [...copy.written].reverse(), progress, own, 15_000);
  } catch (err) {
    return [`could not clean up ${copy.store.url(copy.key)}: ${copy.store.describeError(err)}`];
  }
}
