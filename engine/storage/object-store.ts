import type { Readable, Writable } from "node:stream";
import type { StoreType } from "./destination.js";

// The one storage seam. Everything the backup, restore, retention, status, holds, export and
// recover do with stored objects goes through ObjectStore; one implementation per store type lives
// in engine/storage/<type>/ and is registered in registry.ts. Keys are full object keys (the
// destination's prefix included); the store never interprets them.

/** One stored object as a listing or a HEAD reports it. */
export interface ObjectInfo {
  key: string;
  bytes: number;
  modified?: Date;
  /** The store's version id, where it keeps versions (S3 versioning, GCS generations, Azure versions). */
  version?: string;
  /** An opaque token that changes whenever the object does (ETag, generation, ...): what ifMatch takes. */
  etag?: string;
}

/** Immutability of one object, where the store has it. */
export interface ObjectLock {
  mode?: "GOVERNANCE" | "COMPLIANCE";
  until?: Date;
  legalHold?: boolean;
}

/** What a HEAD tells beyond the listing. */
export interface ObjectDetails extends ObjectInfo {
  lock?: ObjectLock;
  /** Server-side encryption as the store reports it (e.g. SSE-KMS and its key). */
  encryption?: { algorithm: string; keyId?: string };
}

/** An object a write produced: enough to lock, delete or pin exactly that version later. */
export interface WrittenObject {
  key: string;
  version?: string;
  etag?: string;
}

/** An upload that was started and neither finished nor aborted (an S3 multipart upload, uncommitted Azure blocks, a temporary file). */
export interface IncompleteUpload {
  key: string;
  id: string;
  started?: Date;
}

/** The uploads a run started (what its clean-up may abort); `unknown`: a start was sent whose answer never came. */
export interface OwnUploads {
  ids: string[];
  unknown: boolean;
}

/** What the store can do: callers check these instead of the type. */
export interface StoreCapabilities {
  /** Keeps older versions of an overwritten or deleted object (retention then deletes every version). */
  versions: boolean;
  /** Retention locks (until a date) on single objects. */
  lock: boolean;
  /** Legal holds on single objects. */
  legalHold: boolean;
  /** Pre-signed (or SAS) read URLs. */
  presign: boolean;
}

export interface UploadOptions {
  /** May be a promise: the backup learns its key from the first KiB of the stream. */
  key: string | PromiseLike<string>;
  contentType?: string;
  /** Bytes per part (block, chunk) and parts in flight at once: memory is about (queueSize + 1) × partSize. */
  partSize: number;
  queueSize: number;
  /**
   * Parts sent at each part size before it doubles, for stores that take an object in parts
   * (default: a fifth of the store's limit on parts, engine/storage/parted-upload.ts).
   */
  partsPerSize?: number;
  /** Cancels every request in flight. */
  signal?: AbortSignal;
  /**
   * Awaited before the object is made visible (the last part and the completion, the block-list
   * commit, the rename): when it rejects, no object ever appears and the upload fails with its error.
   */
  beforeComplete?: () => Promise<unknown>;
  /** Called as the store acknowledges bytes, with the bytes of that acknowledgement (not the total: that is ObjectUpload.uploaded). */
  onUploaded?: (bytes: number) => void;
  /** Rounds of each part upload; default 5. */
  partAttempts?: number;
  /** Called when a part is sent again after a retryable error. */
  onPartRetry?: (message: string) => void;
}

/**
 * A streamed upload: write the object's bytes, end it, and it exists once `finish` fired (then
 * `result` is set). Fixed memory whatever the size. Never makes a partial object visible; an
 * unfinished upload is removed by the caller with ObjectStore.abortUploads.
 */
export interface ObjectUpload extends Writable {
  /** Bytes written to the upload so far. */
  readonly bytes: number;
  /** Bytes the store acknowledged so far. */
  readonly uploaded: number;
  /** Set once the object exists. */
  readonly result?: WrittenObject;
  /** The first store request that failed, so the caller can tell a store failure from a source failure. */
  readonly storeError?: unknown;
  /** Parts sent again after a retryable error. */
  readonly partRetries: number;
  /** True while writes wait for the store (every buffer full or in flight, or the completion pending). */
  readonly waitingForStore: boolean;
  /** The store-side uploads this one started, for a clean-up that must abort only its own. */
  ownUploads(): OwnUploads;
}

export interface WriteOptions {
  contentType?: string;
  /** Write only if no object has this key (a lost race throws StoreConflictError). */
  ifAbsent?: boolean;
  /** Write only if the object is still the one read with this etag (a lost race throws StoreConflictError). */
  ifMatch?: string;
  signal?: AbortSignal;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** Times a body cut part-way is resumed where it stopped (same version); default 5. */
  resumes?: number;
  onResume?: (message: string) => void;
}

export interface ObjectStore {
  readonly type: StoreType;
  /** The destination's name (`primary`, `offsite`, ...). */
  readonly name: string;
  /** The bucket, container or directory (what a snapshot reference names). */
  readonly container: string;
  /** The destination's prefix ('' or ending in '/'). */
  readonly prefix: string;
  readonly capabilities: StoreCapabilities;

  /** The URL an operator reads and passes back: s3://b/k, gs://b/k, azure://account/container/k, file:///dir/k. Without a key: the container's. */
  url(key?: string): string;
  /** Parses a reference in this store's URL scheme into container + key; undefined when it is not one. */
  parseUrl(ref: string): { container: string; key: string } | undefined;
  /** The same store on another container (a reference naming another bucket). */
  withContainer(container: string): ObjectStore;

  /**
   * Refuses a container that does not exist (ConfigError naming `field`), in one request, before
   * anything else is done. Anything else (no permission to look, no answer) is no evidence:
   * returns a note and the caller goes ahead.
   */
  checkContainer(opts?: { field?: string; signal?: AbortSignal; timeoutMs?: number }): Promise<string | undefined>;

  /** Every object under `prefix` (the whole key space under it), in key order. */
  list(prefix: string, opts?: { signal?: AbortSignal; limit?: number }): Promise<ObjectInfo[]>;
  /** The "folders" directly under `prefix` (each ending in '/'), e.g. the clusters under the destination prefix. */
  listFolders(prefix: string, opts?: { signal?: AbortSignal }): Promise<string[]>;
  /** The object (a given version of it), or undefined when there is none. */
  head(key: string, opts?: { version?: string; signal?: AbortSignal }): Promise<ObjectDetails | undefined>;

  /** A small object's text and etag, or undefined when there is none. */
  readText(key: string, opts?: { signal?: AbortSignal }): Promise<{ text: string; etag?: string } | undefined>;
  /** Writes a small object in one request, under the store's encryption settings. */
  writeText(key: string, text: string, opts?: WriteOptions): Promise<WrittenObject>;
  /** Streams an object; a body cut part-way is resumed (pinned to the version first read), so the reader sees one whole stream. Missing: OperationError naming the URL. */
  openRead(key: string, opts?: ReadOptions): Promise<{ body: Readable; bytes: number; version?: string }>;
  /** Starts a streamed upload (see ObjectUpload). */
  createUpload(opts: UploadOptions): ObjectUpload;

  /** Uploads started and never finished under `prefix` (orphans of killed runs hold space until aborted). */
  listIncompleteUploads(prefix: string, opts?: { signal?: AbortSignal }): Promise<IncompleteUpload[]>;
  /**
   * Aborts the unfinished uploads of exactly `key` (only `own`'s when given), looking again until
   * none is left or the deadline passes. Returns what it could not abort.
   */
  abortUploads(key: string, opts?: { own?: OwnUploads; deadlineMs?: number }): Promise<{ aborted: string[]; left: string[]; error?: string }>;

  /** Every version (and delete marker) of exactly `key`; one entry without a version where the store keeps none. */
  versions(key: string): Promise<WrittenObject[]>;
  /** Deletes one object version (the current object when `version` is unset). A lock that refuses throws StoreLockedError. */
  delete(key: string, opts?: { version?: string; signal?: AbortSignal }): Promise<void>;

  /** Locks an object version until `until` (capabilities.lock). */
  lock(obj: WrittenObject, mode: "GOVERNANCE" | "COMPLIANCE", until: Date): Promise<void>;
  /** Sets or clears a legal hold (capabilities.legalHold). */
  setLegalHold(obj: WrittenObject, hold: boolean): Promise<void>;
  /** A URL that reads the object without credentials until it expires (capabilities.presign). */
  presign(key: string, expiresInSeconds: number): Promise<string>;

  /** A one-line description of a store error for messages ("SlowDown (HTTP 503): ..."). */
  describeError(err: unknown): string;
  /** Releases sockets; the store is not used afterwards. */
  close(): void;
}
