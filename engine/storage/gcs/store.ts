import type { Bucket, File, FileMetadata, Storage } from "@google-cloud/storage";
import { ConfigError, OperationError } from "../../errors.js";
import { StoreCapabilityError, StoreConflictError, StoreLockedError } from "../errors.js";
import type {
  IncompleteUpload,
  ObjectDetails,
  ObjectInfo,
  ObjectLock,
  ObjectStore,
  ObjectUpload,
  OwnUploads,
  ReadOptions,
  StoreCapabilities,
  UploadOptions,
  WriteOptions,
  WrittenObject,
} from "../object-store.js";
import { describeGcsError, isGcsLocked, isGcsNotFound, isGcsPreconditionFailed } from "./client.js";
import { readWhole, resumingRead } from "./read.js";
import { cancelSession } from "./cancel.js";
import { openSessions, sessionOf } from "./sessions.js";
import { GcsUpload } from "./upload.js";
import { gcsUrl, parseGcsUrl } from "./url.js";

export interface GcsStoreOptions {
  storage: Storage;
  name: string;
  bucket: string;
  prefix: string;
  kmsKeyName?: string;
  /**
   * The endpoint is an emulator (fake-gcs-server), which lacks what the store would otherwise
   * promise: it keeps an object's `retention` but deletes the object anyway, drops holds, and its
   * delete ignores `generation` (it removes the live object; a noncurrent one is never removed).
   * On an emulator the store therefore offers no lock, no legal hold and no versions: versions()
   * names the live object only and delete never sends a generation.
   */
  emulator: boolean;
  /** A service-account key is at hand to sign V4 URLs with (see serviceAccountKey). */
  signingKey: boolean;
  /** Objects per listing page (the API's maximum and default: 1000). */
  pageSize?: number;
}

/** V4 signed URLs live at most 7 days (a Cloud Storage rule). */
const MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600;

const lockModes = { GOVERNANCE: "Unlocked", COMPLIANCE: "Locked" } as const;

/** The Cloud Storage store: one bucket, objects keyed by their full name, generations as versions. */
export class GcsStore implements ObjectStore {
  readonly type = "gcs" as const;
  readonly name: string;
  readonly container: string;
  readonly prefix: string;
  readonly capabilities: StoreCapabilities;
  private readonly bucket: Bucket;

  constructor(private readonly opts: GcsStoreOptions) {
    this.name = opts.name;
    this.container = opts.bucket;
    this.prefix = opts.prefix;
    this.bucket = opts.storage.bucket(opts.bucket);
    const google = !opts.emulator;
    this.capabilities = { versions: google, lock: google, legalHold: google, presign: opts.signingKey };
  }

  url(key?: string): string {
    return gcsUrl(this.container, key);
  }

  parseUrl(ref: string): { container: string; key: string } | undefined {
    return parseGcsUrl(ref);
  }

  withContainer(container: string): ObjectStore {
    return new GcsStore({ ...this.opts, bucket: container });
  }

  describeError(err: unknown): string {
    return describeGcsError(err);
  }

  close(): void {
    // The SDK's sockets are keep-alive agents that close when idle; nothing is held open.
  }

  /** An OperationError naming the URL and the API's reason. */
  private failure(what: string, key: string | undefined, err: unknown): OperationError {
    if (err instanceof OperationError) return err;
    return new OperationError(`${what} ${this.url(key)} failed: ${describeGcsError(err)}`, { cause: err });
  }

  private file(key: string, version?: string): File {
    return this.bucket.file(key, { generation: version, kmsKeyName: this.opts.kmsKeyName });
  }

  async checkContainer(opts: { field?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string | undefined> {
    const field = opts.field ?? "destination.bucket";
    const timeoutMs = opts.timeoutMs ?? 5_000;
    let timer: NodeJS.Timeout | undefined;
    const answer = this.bucket.getMetadata().then(
      () => ({ ok: true as const }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const late = new Promise<{ late: true }>((resolve) => {
      timer = setTimeout(() => resolve({ late: true }), timeoutMs);
      opts.signal?.addEventListener("abort", () => resolve({ late: true }), { once: true });
    });
    const r = await Promise.race([answer, late]).finally(() => clearTimeout(timer));
    if ("late" in r) return `the bucket check of ${this.url()} got no answer within ${Math.round(timeoutMs / 1000)} s; going ahead`;
    if (r.ok) return undefined;
    if (isGcsNotFound(r.err)) {
      throw new ConfigError(
        `${field}: the Cloud Storage bucket '${this.container}' (${this.url()}) does not exist; create it (docs/storage-gcs.md) or name an existing bucket in ${field}`,
        { field, stage: "destination" },
      );
    }
    return `could not check ${this.url()} (${describeGcsError(r.err)}); going ahead`;
  }

  async list(prefix: string, opts: { signal?: AbortSignal; limit?: number } = {}): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let pageToken: string | undefined;
    try {
      do {
        if (opts.signal?.aborted) throw opts.signal.reason;
        const [files, next] = await this.bucket.getFiles({ prefix, autoPaginate: false, maxResults: this.opts.pageSize ?? 1000, pageToken });
        for (const f of files) {
          out.push(infoOf(f.name, f.metadata));
          if (opts.limit !== undefined && out.length >= opts.limit) return out;
        }
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    } catch (err) {
      throw this.failure("listing", prefix, err);
    }
    return out;
  }

  async listFolders(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const folders = new Set<string>();
    let pageToken: string | undefined;
    try {
      do {
        if (opts.signal?.aborted) throw opts.signal.reason;
        const [, next, response] = await this.bucket.getFiles({ prefix, delimiter: "/", autoPaginate: false, maxResults: this.opts.pageSize ?? 1000, pageToken });
        for (const p of (response as { prefixes?: string[] } | undefined)?.prefixes ?? []) folders.add(p);
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    } catch (err) {
      throw this.failure("listing the folders of", prefix, err);
    }
    return [...folders].sort();
  }

  async head(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<ObjectDetails | undefined> {
    let metadata: FileMetadata;
    try {
      [metadata] = await this.file(key, opts.version).getMetadata();
    } catch (err) {
      if (isGcsNotFound(err)) return undefined;
      throw this.failure("reading the metadata of", key, err);
    }
    return {
      ...infoOf(key, metadata),
      lock: lockOf(metadata),
      encryption: metadata.kmsKeyName ? { algorithm: "cloud-kms", keyId: metadata.kmsKeyName } : undefined,
    };
  }

  async readText(key: string, opts: { signal?: AbortSignal } = {}): Promise<{ text: string; etag?: string } | undefined> {
    // The generation is read first and the bytes of exactly that generation after, so the etag
    // always names the text returned.
    const head = await this.head(key, opts);
    if (!head) return undefined;
    try {
      const bytes = await readWhole(this.file(key, head.version), opts.signal);
      return { text: bytes.toString("utf8"), etag: head.etag };
    } catch (err) {
      if (isGcsNotFound(err)) return undefined;
      throw this.failure("reading", key, err);
    }
  }

  async writeText(key: string, text: string, opts: WriteOptions = {}): Promise<WrittenObject> {
    if (opts.ifMatch !== undefined && !/^\d+$/.test(opts.ifMatch)) {
      throw new StoreConflictError(`writing ${this.url(key)}: '${opts.ifMatch}' is not a generation of this object, so it cannot be the one read`);
    }
    const ifGenerationMatch = opts.ifAbsent ? 0 : opts.ifMatch;
    const file = this.file(key);
    try {
      await file.save(text, {
        resumable: false,
        validation: false,
        contentType: opts.contentType ?? "text/plain; charset=utf-8",
        preconditionOpts: ifGenerationMatch === undefined ? undefined : { ifGenerationMatch },
      });
    } catch (err) {
      if (isGcsPreconditionFailed(err)) {
        throw new StoreConflictError(
          `${this.url(key)} ${opts.ifAbsent ? "already exists" : `is no longer generation ${opts.ifMatch}`}: another writer changed it first (${describeGcsError(err)})`,
          { cause: err },
        );
      }
      if (isGcsLocked(err)) throw new StoreLockedError(`${this.url(key)} is locked and cannot be overwritten: ${describeGcsError(err)}`, { cause: err });
      throw this.failure("writing", key, err);
    }
    const generation = file.metadata.generation === undefined ? undefined : String(file.metadata.generation);
    return { key, version: generation, etag: generation };
  }

  async openRead(key: string, opts: ReadOptions = {}): Promise<{ body: ReadableStreamLike; bytes: number; version?: string }> {
    const head = await this.head(key, { signal: opts.signal });
    if (!head) throw new OperationError(`${this.url(key)} does not exist`, { stage: "download" });
    const body = resumingRead({
      file: this.file(key, head.version),
      bytes: head.bytes,
      url: this.url(key),
      signal: opts.signal,
      resumes: opts.resumes ?? 5,
      onResume: opts.onResume,
    });
    return { body, bytes: head.bytes, version: head.version };
  }

  createUpload(opts: UploadOptions): ObjectUpload {
    return new GcsUpload({ bucket: this.bucket, kmsKeyName: this.opts.kmsKeyName, url: (key) => this.url(key) }, opts);
  }

  async listIncompleteUploads(prefix: string): Promise<IncompleteUpload[]> {
    // Cloud Storage cannot list upload sessions: only those this process opened are known.
    return openSessions(this.container, prefix).map((s) => ({ key: s.key, id: s.uri, started: s.started }));
  }

  async abortUploads(key: string, opts: { own?: OwnUploads; deadlineMs?: number } = {}): Promise<{ aborted: string[]; left: string[]; error?: string }> {
    const ids = opts.own
      ? opts.own.ids.filter((id) => (sessionOf(id)?.key ?? key) === key)
      : openSessions(this.container, key)
          .filter((s) => s.key === key)
          .map((s) => s.uri);
    const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
    const aborted: string[] = [];
    const left: string[] = [];
    let error: string | undefined;
    for (const id of ids) {
      const r = await cancelSession(id, deadline);
      if (r.cancelled) aborted.push(id);
      else {
        left.push(id);
        error ??= r.error;
      }
    }
    return { aborted, left, error };
  }

  async versions(key: string): Promise<WrittenObject[]> {
    if (!this.capabilities.versions) return (await this.head(key)) ? [{ key }] : [];
    const out: WrittenObject[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const [files, next] = await this.bucket.getFiles({ prefix: key, versions: true, autoPaginate: false, maxResults: this.opts.pageSize ?? 1000, pageToken });
        for (const f of files) {
          if (f.name !== key) continue;
          const generation = f.metadata.generation === undefined ? undefined : String(f.metadata.generation);
          out.push({ key, version: generation, etag: generation });
        }
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    } catch (err) {
      throw this.failure("listing the versions of", key, err);
    }
    return out;
  }

  async delete(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<void> {
    if (opts.version !== undefined && !this.capabilities.versions) {
      // The emulator would delete the live object whatever generation is named: only the live one may go.
      const live = await this.head(key);
      if (!live) return;
      if (live.version !== opts.version) {
        throw new StoreCapabilityError(`deleting ${this.url(key)} generation ${opts.version}: this emulator cannot delete a generation that is not the live one`);
      }
    }
    try {
      await this.file(key, this.capabilities.versions ? opts.version : undefined).delete({ ignoreNotFound: true });
    } catch (err) {
      if (isGcsLocked(err)) {
        throw new StoreLockedError(`${this.url(key)}${opts.version ? ` (generation ${opts.version})` : ""} is locked: ${describeGcsError(err)}`, { cause: err });
      }
      throw this.failure("deleting", key, err);
    }
  }

  async lock(obj: WrittenObject, mode: "GOVERNANCE" | "COMPLIANCE", until: Date): Promise<void> {
    this.need("lock", "object retention");
    const retention = { mode: lockModes[mode], retainUntilTime: until.toISOString() };
    let kept: FileMetadata;
    try {
      // overrideUnlockedRetention: an Unlocked (GOVERNANCE) retention may be changed by whoever may update it.
      [kept] = await this.file(obj.key, obj.version).setMetadata({ retention }, { overrideUnlockedRetention: true });
    } catch (err) {
      if (isGcsLocked(err)) throw new StoreLockedError(`${this.url(obj.key)} keeps its retention: ${describeGcsError(err)}`, { cause: err });
      throw this.failure("setting the retention of", obj.key, err);
    }
    const got = kept.retention;
    if (got?.mode !== retention.mode || !got.retainUntilTime || new Date(got.retainUntilTime).getTime() !== until.getTime()) {
      throw new OperationError(
        `${this.url(obj.key)}: the server did not keep the retention asked for (${retention.mode} until ${retention.retainUntilTime}); ` +
          `the bucket needs object retention enabled (docs/storage-gcs.md)`,
      );
    }
  }

  async setLegalHold(obj: WrittenObject, hold: boolean): Promise<void> {
    this.need("setLegalHold", "temporary holds");
    let kept: FileMetadata;
    try {
      [kept] = await this.file(obj.key, obj.version).setMetadata({ temporaryHold: hold });
    } catch (err) {
      throw this.failure(hold ? "placing a hold on" : "releasing the hold on", obj.key, err);
    }
    if (Boolean(kept.temporaryHold) !== hold) {
      throw new OperationError(
        `${this.url(obj.key)}: the server did not keep the temporary hold (${hold ? "set" : "cleared"}); it reports temporaryHold=${String(kept.temporaryHold)}`,
      );
    }
  }

  async presign(key: string, expiresInSeconds: number): Promise<string> {
    if (!this.opts.signingKey) {
      throw new StoreCapabilityError(
        `presign ${this.url(key)}: a V4 signed URL needs a service-account key, and Application Default Credentials hold none ` +
          `(set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file; docs/storage-gcs.md)`,
      );
    }
    if (expiresInSeconds > MAX_SIGNED_URL_SECONDS) {
      throw new ConfigError(`presign ${this.url(key)}: a signed URL lives at most 7 days (${MAX_SIGNED_URL_SECONDS} s); ask for less than ${expiresInSeconds} s`);
    }
    try {
      const [url] = await this.bucket.file(key).getSignedUrl({ version: "v4", action: "read", expires: Date.now() + expiresInSeconds * 1000 });
      // Not registered for redaction: `vrb presign` prints the URL through redact (as the S3 and
      // Azure stores' URLs); elsewhere it is shown as redactUrl(url).
      return url;
    } catch (err) {
      throw this.failure("signing a URL for", key, err);
    }
  }

  private need(operation: string, what: string): void {
    const has = operation === "lock" ? this.capabilities.lock : this.capabilities.legalHold;
    if (!has) {
      throw new StoreCapabilityError(
        `${operation} on ${this.url()}: this Cloud Storage endpoint is an emulator (fake-gcs-server), which does not enforce ${what}; a lock there would protect nothing`,
      );
    }
  }
}

type ReadableStreamLike = ReturnType<typeof resumingRead>;

function infoOf(key: string, m: FileMetadata): ObjectInfo {
  const generation = m.generation === undefined ? undefined : String(m.generation);
  return { key, bytes: Number(m.size ?? 0), modified: m.updated ? new Date(m.updated) : undefined, version: generation, etag: generation };
}

/** Object retention (mode and date), else the bucket policy's expiry; a temporary or event-based hold. */
function lockOf(m: FileMetadata): ObjectLock | undefined {
  const retention = m.retention;
  const mode = retention?.mode === "Locked" ? "COMPLIANCE" : retention?.mode === "Unlocked" ? "GOVERNANCE" : undefined;
  const untilText = retention?.retainUntilTime ?? m.retentionExpirationTime;
  const legalHold = Boolean(m.temporaryHold) || Boolean(m.eventBasedHold);
  if (!mode && !untilText && !legalHold) return undefined;
  return { mode, until: untilText ? new Date(untilText) : undefined, legalHold };
}
