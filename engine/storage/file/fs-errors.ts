import { OperationError, VrbError, messageOf } from "../../errors.js";
import { StoreFullError } from "../errors.js";

// File-system failures as messages: the store's URL of the object and the errno code (ENOSPC,
// EACCES, EROFS, ESTALE ...), which is what an operator searches for. Paths are not secrets; a
// directory store has no credentials to leak.

/** The errno code of a Node file-system error, e.g. 'ENOENT'. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export function isMissing(err: unknown): boolean {
  const code = errnoOf(err);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** "ENOSPC: no space left on device, write" for errno errors, the message otherwise. */
export function describeFsError(err: unknown): string {
  if (err instanceof VrbError) return err.message;
  const code = errnoOf(err);
  const message = messageOf(err);
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}

/** Errno codes no retry within minutes gets past: no space, over quota, mounted read-only. */
const FULL_OR_READ_ONLY = new Set(["ENOSPC", "EDQUOT", "EROFS"]);

/**
 * An OperationError saying what failed on which object, with the errno code; engine errors pass
 * through. A full or read-only file system is a StoreFullError (not retried) that says what to do.
 */
export function fsFailure(what: string, url: string, err: unknown): VrbError {
  if (err instanceof VrbError) return err;
  const code = errnoOf(err);
  if (code && FULL_OR_READ_ONLY.has(code)) {
    const fix = code === "EROFS" ? "the file system is mounted read-only: remount it read-write" : "free space (or quota) on that file system";
    return new StoreFullError(`${what} ${url}: ${describeFsError(err)}; ${fix}, then run the backup again (not retried: every attempt would fail the same way)`, { cause: err });
  }
  return new OperationError(`${what} ${url}: ${describeFsError(err)}`, { cause: err });
}
