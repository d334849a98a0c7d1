/** Exit codes of the `vrb` CLI (docs/architecture.md, "Exit codes"); engine errors carry the one that fits them. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  integrity: 3,
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

export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof VrbError ? err.exitCode : ExitCode.failed;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
