import { OperationError, VrbError, messageOf } from "../../errors.js";

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

/** An OperationError saying what failed on which object, with the errno code; engine errors pass through. */
export function fsFailure(what: string, url: string, err: unknown): VrbError {
  if (err instanceof VrbError) return err;
  return new OperationError(`${what} ${url}: ${describeFsError(err)}`, { cause: err });
}
