import { findCause, OperationError } from "../errors.js";

/** A conditional write lost its race (the object changed, or appeared, since it was read). */
export class StoreConflictError extends OperationError {}

/** A delete or overwrite refused because the object is locked (retention or legal hold). */
export class StoreLockedError extends OperationError {}

/**
 * The store refused the write in a way another attempt seconds later meets again: a full or
 * read-only file system, a disk quota. A backup does not retry it (each attempt would stream the
 * whole snapshot from Vault again for nothing) and says what to free.
 */
export class StoreFullError extends OperationError {}

/** Whether `err`, or an error it wraps (a stage's error wraps the store's), is a StoreFullError. */
export function isStoreFull(err: unknown): boolean {
  return findCause(err, (e) => e instanceof StoreFullError) !== undefined;
}

/**
 * Whether the store refused `err`'s request for lack of permission (HTTP 403), in any store's SDK
 * (S3's `$metadata.httpStatusCode`, Azure's `statusCode`, Cloud Storage's numeric `code`), looking
 * through the errors that wrap it.
 */
export function isRefusedPermission(err: unknown): boolean {
  return (
    findCause(err, (e) => {
      const x = e as { $metadata?: { httpStatusCode?: number }; statusCode?: unknown; code?: unknown };
      return x.$metadata?.httpStatusCode === 403 || x.statusCode === 403 || x.code === 403;
    }) !== undefined
  );
}

/** The store lacks a capability the operation needs (e.g. legal holds on a directory). */
export class StoreCapabilityError extends OperationError {}

/**
 * A store that accepted a request and gave no answer in time (a hung server or load balancer, a
 * firewall that drops packets, a hung NFS mount). `noAnswer` says it in a few words, for messages
 * that name the store themselves.
 */
export class StoreNoAnswerError extends OperationError {
  readonly noAnswer: string;
  /** `setting`: what sets the deadline, named as the one to raise for a store that is only slow. */
  constructor(store: string, seconds: number, what: string, options: { cause?: unknown; setting?: string } = {}) {
    const noAnswer = `no answer within ${seconds}s to ${what}`;
    super(`${store} did not answer: ${noAnswer}${options.setting ? ` (a store that is only slow: raise ${options.setting})` : ""}`, { cause: options.cause });
    this.noAnswer = noAnswer;
  }
}
