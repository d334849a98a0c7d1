/** Exit codes of the `vrb` CLI (docs/architecture.md, "Exit codes"); engine errors carry the one that fits them. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  integrity: 3,
  /** Stopped by a signal: 128 + its number, the shell's convention (SIGHUP 1, SIGINT 2, SIGTERM 15). */
  sighup: 129,
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface VrbErrorOptions {
  /** Which step of a longer operation failed ("stream", "upload", "unseal node 2" ...). */
  stage?: string;
  cause?: unknown;
}

/** Base of every error the engine throws on purpose; `message` is safe to print (no secrets). */
export class VrbError extends Error {
  readonly exitCode: ExitCode = ExitCode.failed;
  readonly stage?: string;
  constructor(message: string, options: VrbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.stage = options.stage;
  }
}

/** Bad input: a config field, a flag, a missing token. Raised before anything is changed. */
export class ConfigError extends VrbError {
  override readonly exitCode: ExitCode = ExitCode.usage;
  /** Dotted path of the offending field, e.g. `destination.bucket`. */
  readonly field?: string;
  constructor(message: string, options: VrbErrorOptions & { field?: string } = {}) {
    super(message, options);
    this.field = options.field;
  }
}

/** A snapshot or object that does not match its checksums or manifest. */
export class IntegrityError extends VrbError {
  override readonly exitCode: ExitCode = ExitCode.integrity;
}

/** An operation against Vault, S3 or a local process that failed. */
export class OperationError extends VrbError {}

/** The signals an interrupted command names, and the exit code each gives. */
const SIGNAL_EXIT_CODES = { SIGHUP: ExitCode.sighup, SIGINT: ExitCode.sigint, SIGTERM: ExitCode.sigterm } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;
/** The signals that ask a command to stop (Ctrl-C, a pod's or a CI job's stop, a closed terminal). */
export const STOP_SIGNALS: readonly StopSignal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** The shell's exit code of a process ended by `signal`: 128 + its number. */
export function exitCodeOfSignal(signal: StopSignal): ExitCode {
  return SIGNAL_EXIT_CODES[signal];
}

/**
 * An operation stopped from outside before it finished (Ctrl-C, a pod's SIGTERM, a caller's
 * AbortSignal), after cleaning up what it had made. With a `signal` the exit code is the shell's
 * for it (SIGINT 130, SIGTERM 143); without one it is a plain failure (1).
 */
export class InterruptedError extends VrbError {
  override readonly exitCode: ExitCode;
  readonly signal?: StopSignal;
  constructor(message: string, options: VrbErrorOptions & { signal?: StopSignal } = {}) {
    super(message, options);
    this.signal = options.signal;
    this.exitCode = options.signal ? exitCodeOfSignal(options.signal) : ExitCode.failed;
  }
}

/**
 * The error of an operation stopped through `signal`: "interrupted (SIGTERM) <at>", e.g. at
 * "during the download"; the signal's name when its reason is an InterruptedError (as the CLI's
 * is), else the reason's text.
 */
export function interruption(signal: AbortSignal, at?: string, stage?: string): InterruptedError {
  const reason: unknown = signal.reason;
  const sig = reason instanceof InterruptedError ? reason.signal : undefined;
  const why = sig ?? (reason instanceof Error ? reason.message : String(reason ?? "aborted"));
  return new InterruptedError(`interrupted (${why})${at ? ` ${at}` : ""}`, { signal: sig, stage, cause: reason });
}

/** A safe point: throws `interruption(signal, at, stage)` once `signal` has aborted. */
export function throwIfInterrupted(signal: AbortSignal | undefined, at?: string, stage?: string): void {
  if (signal?.aborted) throw interruption(signal, at, stage);
}

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof VrbError ? err.exitCode : ExitCode.failed;
}

/**
 * The first of `err` and the errors it wraps (`cause`, up to 5 deep) that `test` takes: a store's
 * or SDK's error arrives wrapped by a pipeline stage ("upload failed: ...").
 */
export function findCause(err: unknown, test: (e: unknown) => boolean): unknown {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) if (test(e)) return e;
  return undefined;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
