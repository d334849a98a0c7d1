import type { Readable } from "node:stream";
import type { StoreType } from "./destination.js";
import { timedOutAfterMs } from "../timeout-signal.js";
import { StoreNoAnswerError } from "./errors.js";
import type {
  IncompleteUpload,
  ObjectDetails,
  ObjectInfo,
  ObjectStore,
  ObjectUpload,
  OwnUploads,
  ReadOptions,
  StoreCapabilities,
  UploadOptions,
  WriteOptions,
  WrittenObject,
} from "./object-store.js";

/** How long a store may leave a request unanswered when its destination does not say (`timeoutSeconds`). */
export const DEFAULT_STORE_TIMEOUT_SECONDS = 60;

/**
 * `store` with a deadline on every request that is not a streamed transfer: a list (all its
 * pages), a HEAD, a small read or write, a delete, a lock, and the opening of a download (until
 * the store answers). None of the SDKs gives up on a store that accepts the connection and then
 * says nothing (a hung server or load balancer, a firewall that drops packets, a hung NFS mount):
 * without this, `vrb restore latest` or a scheduled backup would wait forever without a word.
 * Past the deadline the request is cancelled and the call fails with StoreNoAnswerError, whether or
 * not the store's own code honours the cancellation. Transfers (uploads, a download's body) are
 * not bounded here: the backup and download pipelines watch them for stalls.
 */
export function withAnswerDeadline(store: ObjectStore, timeoutSeconds: number, onWaiting?: (message: string) => void): ObjectStore {
  return new AnswerDeadlineStore(store, timeoutSeconds, onWaiting);
}

/** After this long without an answer the operator is told what is being waited for (when the deadline is further off than twice that). */
const WAITING_NOTICE_SECONDS = 10;

class AnswerDeadlineStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly seconds: number,
    private readonly onWaiting?: (message: string) => void,
  ) {}

  get type(): StoreType {
    return this.inner.type;
  }
  get name(): string {
    return this.inner.name;
  }
  get container(): string {
    return this.inner.container;
  }
  get prefix(): string {
    return this.inner.prefix;
  }
  get capabilities(): StoreCapabilities {
    return this.inner.capabilities;
  }

  url(key?: string): string {
    return this.inner.url(key);
  }
  parseUrl(ref: string): { container: string; key: string } | undefined {
    return this.inner.parseUrl(ref);
  }
  withContainer(container: string): ObjectStore {
    const other = this.inner.withContainer(container);
    return other === this.inner ? this : new AnswerDeadlineStore(other, this.seconds, this.onWaiting);
  }

  // It has its own short deadline, and no answer there is no evidence either way.
  checkContainer(opts?: { field?: string; signal?: AbortSignal; timeoutMs?: number }): Promise<string | undefined> {
    return this.inner.checkContainer(opts);
  }

  list(prefix: string, opts: { signal?: AbortSignal; limit?: number } = {}): Promise<ObjectInfo[]> {
    return this.answered(`the listing of ${this.url(prefix)}`, opts.signal, (signal) => this.inner.list(prefix, { ...opts, signal }));
  }
  listFolders(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.answered(`the listing of ${this.url(prefix)}`, opts.signal, (signal) => this.inner.listFolders(prefix, { ...opts, signal }));
  }
  head(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<ObjectDetails | undefined> {
    return this.answered(`a HEAD of ${this.url(key)}`, opts.signal, (signal) => this.inner.head(key, { ...opts, signal }));
  }
  readText(key: string, opts: { signal?: AbortSignal } = {}): Promise<{ text: string; etag?: string } | undefined> {
    return this.answered(`the read of ${this.url(key)}`, opts.signal, (signal) => this.inner.readText(key, { ...opts, signal }));
  }
  writeText(key: string, text: string, opts: WriteOptions = {}): Promise<WrittenObject> {
    return this.answered(`the write of ${this.url(key)}`, opts.signal, (signal) => this.inner.writeText(key, text, { ...opts, signal }));
  }
  openRead(key: string, opts: ReadOptions = {}): Promise<{ body: Readable; bytes: number; version?: string }> {
    // The deadline ends when the download starts: the body's pace is the reader's watchdog's business.
    return this.answered(`the download of ${this.url(key)}`, opts.signal, (signal) => this.inner.openRead(key, { ...opts, signal }));
  }
  createUpload(opts: UploadOptions): ObjectUpload {
    return this.inner.createUpload(opts);
  }
  listIncompleteUploads(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<IncompleteUpload[]> {
    return this.answered(`the listing of unfinished uploads under ${this.url(prefix)}`, opts.signal, (signal) => this.inner.listIncompleteUploads(prefix, { ...opts, signal }));
  }
  // Bounded by its own deadline (deadlineMs), per request and in all.
  abortUploads(key: string, opts?: { own?: OwnUploads; deadlineMs?: number }): Promise<{ aborted: string[]; left: string[]; error?: string }> {
    return this.inner.abortUploads(key, opts);
  }
  versions(key: string): Promise<WrittenObject[]> {
    return this.answered(`the listing of the versions of ${this.url(key)}`, undefined, () => this.inner.versions(key));
  }
  delete(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<void> {
    return this.answered(`the delete of ${this.url(key)}`, opts.signal, (signal) => this.inner.delete(key, { ...opts, signal }));
  }
  lock(obj: WrittenObject, mode: "GOVERNANCE" | "COMPLIANCE", until: Date): Promise<void> {
    return this.answered(`the lock of ${this.url(obj.key)}`, undefined, () => this.inner.lock(obj, mode, until));
  }
  setLegalHold(obj: WrittenObject, hold: boolean): Promise<void> {
    return this.answered(`the legal hold of ${this.url(obj.key)}`, undefined, () => this.inner.setLegalHold(obj, hold));
  }
  presign(key: string, expiresInSeconds: number): Promise<string> {
    return this.answered(`signing a URL of ${this.url(key)}`, undefined, () => this.inner.presign(key, expiresInSeconds));
  }

  describeError(err: unknown): string {
    return err instanceof StoreNoAnswerError ? err.noAnswer : this.inner.describeError(err);
  }
  close(): void {
    this.inner.close();
  }

  /**
   * Runs `call` with a signal that also aborts at the deadline; past it the call fails with
   * StoreNoAnswerError even if the store's code goes on waiting. The caller's own abort fails with
   * its reason (an interruption is not a store that did not answer).
   */
  private async answered<T>(what: string, callerSignal: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = new AbortController();
    const signal = callerSignal ? AbortSignal.any([callerSignal, deadline.signal]) : deadline.signal;
    let timer: NodeJS.Timeout | undefined;
    // A minute of silence reads as a hung command: say what it waits for, and until when.
    const notice =
      this.onWaiting && this.seconds >= 2 * WAITING_NOTICE_SECONDS
        ? setTimeout(
            () => this.onWaiting?.(`${this.url()} has not answered ${what} for ${WAITING_NOTICE_SECONDS}s; waiting up to ${this.seconds}s (the destination's timeoutSeconds)`),
            WAITING_NOTICE_SECONDS * 1000,
          )
        : undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new StoreNoAnswerError(this.url(), this.seconds, what, { setting: "the destination's timeoutSeconds" });
        deadline.abort(err);
        reject(err);
      }, this.seconds * 1000);
    });
    try {
      return await Promise.race([call(signal), late]);
    } catch (err) {
      if (deadline.signal.aborted && !callerSignal?.aborted) throw deadline.signal.reason as StoreNoAnswerError;
      // The caller's own deadline (timeoutSignal) is a store that did not answer too, not the SDK's "Request aborted".
      const callerTimeoutMs = timedOutAfterMs(callerSignal);
      if (callerTimeoutMs !== undefined) throw new StoreNoAnswerError(this.url(), callerTimeoutMs / 1000, what, { cause: err });
      // An interruption says so itself ("interrupted (SIGTERM)"), not as the SDK's "Request aborted".
      if (callerSignal?.aborted && callerSignal.reason instanceof Error) throw callerSignal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      clearTimeout(notice);
    }
  }
}
