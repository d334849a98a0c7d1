import type { Readable } from "node:stream";
import { ConfigError, IntegrityError, OperationError, VrbError } from "../errors.js";
import { describeNetError } from "../vault/client.js";
import { StallWatchdog } from "./stall-watchdog.js";
import { chunksOf } from "./chunks.js";

/**
 * One step of a streamed pass over a snapshot (hashing, archive check, upload, saving to a file).
 * Every stage sees every chunk of the source, in order. The runner (StagePipeline.run) wires them;
 * a stage only does its own job.
 */
export interface Stage {
  /** Names the stage in errors (`err.stage`) and in the CLI's "[stage: ...]". */
  readonly name: string;
  /**
   * Takes the next chunk. Returns nothing when the chunk was taken at once, or a promise when the
   * stage is full (backpressure): the runner reads no further chunk until it settles. A rejection
   * (or a throw) fails the whole pipeline at this stage.
   */
  write(chunk: Buffer): void | Promise<void>;
  /** The source ended: resolves once the stage's work on it is done (or rejects: fails the pipeline). */
  finish(): void | Promise<void>;
  /**
   * The pipeline failed (here or elsewhere): stop work and release resources at once. Must not
   * throw and must not wait; called at most once, and never after a successful finish.
   */
  abort(reason: Error): void;
  /** A stage that can fail between calls (a check running behind its input) rejects this. */
  readonly failed?: Promise<unknown>;
}

/** Where the bytes come from; its name is the stage of a failure of the stream itself. */
export interface PipelineSource {
  readonly name: string;
  readonly stream: Readable;
}

/** The same kind of error (so the same exit code) with a stage and, optionally, a longer message. */
export function withStage(err: VrbError, stage: string, message = err.message): VrbError {
  const options = { stage, cause: err };
  if (err instanceof ConfigError) return new ConfigError(message, { ...options, field: err.field });
  if (err instanceof IntegrityError) return new IntegrityError(message, options);
  return new OperationError(message, options);
}

/** Gives every failure a stage and a safe message, keeping engine errors (and their stage) as they are. */
export function stagedError(stage: string, err: unknown): VrbError {
  if (err instanceof VrbError) return err.stage ? err : withStage(err, stage);
  const name = (err as { name?: string })?.name;
  const detail = name && name !== "Error" && name !== "AbortError" ? `${name}: ${describeNetError(err)}` : describeNetError(err);
  return new OperationError(`${stage} failed: ${detail}`, { stage, cause: err });
}

/**
 * Runs one streamed pass: a source read once, every chunk handed to each stage, then each stage
 * finished in order. The first failure wins, wherever it comes from (a stage, the source, the
 * stall watchdog, `fail()` from outside such as a deadline): it aborts every stage, destroys the
 * source, aborts `signal` (cancelling requests in flight), and every `race()` and `run()` rejects
 * with it at once, so no side is left waiting for another that will never move (a destroyed stage
 * that never drains, a stopped S3 server, a dead node).
 *
 * One pipeline is one attempt: the caller may race its other awaits (preflight, probes, the
 * finishing steps) against the same failure with `race()`.
 */
export class StagePipeline {
  private readonly controller = new AbortController();
  private first?: VrbError;
  private rejectFailed: (e: VrbError) => void = () => undefined;
  private readonly failedPromise = new Promise<never>((_, reject) => (this.rejectFailed = reject));
  private watchdog?: StallWatchdog;
  private running?: { source: PipelineSource; stages: readonly Stage[] };
  private finished = false;

  constructor() {
    this.failedPromise.catch(() => undefined);
  }

  /** Aborted with the first failure. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first failure, once there is one. */
  get failure(): VrbError | undefined {
    return this.first;
  }

  /**
   * Records a failure at `stage` (kept as is when it already names one). The first one wins and is
   * returned; later ones are returned the first one, so `throw pipeline.fail(...)` always throws it.
   */
  fail(stage: string, err: unknown): VrbError {
    if (this.first) return this.first;
    const e = stagedError(stage, err);
    this.first = e;
    this.stopWatch();
    this.abortRunning(e);
    this.controller.abort(e);
    this.rejectFailed(e);
    return e;
  }

  /** `p`, or the pipeline's failure if that comes first. */
  race<T>(p: PromiseLike<T>): Promise<T> {
    // Always through Promise.race, also once failed: `p` keeps a handler, and a rejection of it
    // later is never unhandled.
    return Promise.race([p, this.failedPromise]);
  }

  /**
   * Fails the pipeline with `error(idleMs)` when `touch()` was not called for `timeoutMs`. The
   * runner touches on every chunk read; stages that move bytes elsewhere (an upload's parts) touch
   * through their callbacks. Stopped by the first failure or `close()`.
   */
  watch(timeoutMs: number, error: (idleMs: number) => Error): void {
    this.stopWatch();
    this.watchdog = new StallWatchdog(timeoutMs, (idle) => this.fail("stall", error(idle))).start();
  }

  /** Bytes moved: keeps the stall watchdog quiet. */
  touch(): void {
    this.watchdog?.touch();
  }

  /** Stops the stall watchdog (the pass is over). */
  close(): void {
    this.stopWatch();
  }

  private abortRunning(e: VrbError): void {
    const running = this.running;
    if (!running || this.finished) return;
    for (const s of running.stages) {
      try {
        s.abort(e);
      } catch {
        // abort must not throw; a stage that does cannot hold up the others
      }
    }
    running.source.stream.destroy();
  }

  private stopWatch(): void {
    this.watchdog?.stop();
    this.watchdog = undefined;
  }

  /**
   * Reads `source` to its end through `stages`, then finishes the stages in order. Resolves when
   * every stage finished; rejects with the first failure (its `stage` names where it happened).
   * Memory stays bounded by the stages: no chunk is read while a stage holds back.
   */
  async run(source: PipelineSource, stages: readonly Stage[]): Promise<void> {
    if (this.running) throw new Error("a StagePipeline runs once");
    this.running = { source, stages };
    const stream = source.stream;
    if (this.first) {
      // Failed before the pass began (a deadline): nothing may start.
      this.abortRunning(this.first);
      throw this.first;
    }
    // A source that breaks while the runner waits on a full stage must end the pass now, not when
    // that stage moves again (it may be waiting for a server that is gone).
    let reading = true;
    stream.on("error", (e: unknown) => {
      if (reading) this.fail(source.name, e);
    });
    for (const s of stages) {
      s.failed?.then(undefined, (e: unknown) => this.fail(s.name, e));
    }
    try {
      for await (const chunk of chunksOf(stream)) {
        this.touch();
        let waits: Promise<void>[] | undefined;
        for (const s of stages) {
          let r: void | Promise<void>;
          try {
            r = s.write(chunk);
          } catch (e) {
            throw this.fail(s.name, e);
          }
          if (r) (waits ??= []).push(r.then(undefined, (e: unknown) => void this.fail(s.name, e)));
        }
        if (waits) await this.race<unknown>(waits.length === 1 ? waits[0]! : Promise.all(waits));
        if (this.first) throw this.first;
      }
    } catch (e) {
      throw this.fail(source.name, e);
    } finally {
      reading = false;
    }
    if (this.first) throw this.first;
    for (const s of stages) {
      try {
        await this.race(Promise.resolve().then(() => s.finish()));
      } catch (e) {
        throw this.fail(s.name, e);
      }
    }
    if (this.first) throw this.first;
    this.finished = true;
  }
}
