import { constants } from "node:fs";
import { access, lstat, open, readdir, stat, unlink } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { ConfigError, OperationError } from "../../errors.js";
import type { FileDestination } from "../destination.js";
import { StoreCapabilityError } from "../errors.js";
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
} from "../object-store.js";
import { removeEmptyDirs, syncDir } from "./durable.js";
import { etagOf } from "./etag.js";
import { describeFsError, errnoOf, fsFailure, isMissing } from "./fs-errors.js";
import { isInternalName, lockName, pathOf } from "./keys.js";
import { withFileLock } from "./lock.js";
import { FileUpload } from "./upload.js";
import { holdsObject, startOf, walk } from "./walk.js";
import { writeTextFile } from "./write-text.js";

const NO_IMMUTABILITY = "a directory has no immutability; use S3 Object Lock, GCS retention or Azure immutability for WORM copies";

/** A destination that is a directory (an NFS mount, a backup appliance's share): keys are files under `path`. */
export class FileStore implements ObjectStore {
  readonly type = "file" as const;
  readonly capabilities: StoreCapabilities = { versions: false, lock: false, legalHold: false, presign: false };
  readonly container: string;
  readonly prefix: string;

  constructor(
    private readonly destination: FileDestination,
    readonly name: string,
  ) {
    if (!isAbsolute(destination.path)) {
      throw new ConfigError(`destination.path: '${destination.path}' must be an absolute directory path, e.g. /mnt/backup/vault`, { field: "destination.path" });
    }
    this.container = resolve(destination.path);
    this.prefix = destination.prefix ?? "";
  }

  url(key?: string): string {
    const dir = this.container === "/" ? "" : this.container;
    return key === undefined ? `file://${this.container}` : `file://${dir}/${key}`;
  }

  parseUrl(ref: string): { container: string; key: string } | undefined {
    if (!ref.startsWith("file:///")) return undefined;
    const path = ref.slice("file://".length);
    const own = this.container === "/" ? "/" : `${this.container}/`;
    // A file under this store's directory keeps its whole key; any other file is a key in its own directory.
    if (path.startsWith(own) && path.length > own.length) return { container: this.container, key: path.slice(own.length) };
    const key = basename(path);
    return key ? { container: dirname(path), key } : undefined;
  }

  withContainer(container: string): ObjectStore {
    return new FileStore({ ...this.destination, path: container }, this.name);
  }

  async checkContainer(opts: { field?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string | undefined> {
    const field = opts.field ?? "destination.path";
    const dir = this.container;
    // A hung NFS mount blocks stat for minutes: no answer in time is no evidence either way.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), opts.timeoutMs ?? 15_000)));
    const checked = this.probe(dir, field).then(
      (problem) => ({ problem }),
      (err: unknown) => ({ err }),
    );
    const outcome = await Promise.race([checked, timeout]).finally(() => clearTimeout(timer));
    if (outcome === "timeout") return `${this.url()} did not answer within ${Math.round((opts.timeoutMs ?? 15_000) / 1000)}s (a hung NFS mount?); going ahead`;
    if ("err" in outcome) return `could not check ${this.url()}: ${describeFsError(outcome.err)}; going ahead`;
    if (outcome.problem) throw new ConfigError(`${field}: ${outcome.problem}`, { field });
    return undefined;
  }

  /** What is wrong with the directory as a destination (missing, not a directory, not writable), or undefined. */
  private async probe(dir: string, field: string): Promise<string | undefined> {
    let st;
    try {
      st = await stat(dir);
    } catch (err) {
      if (isMissing(err)) return `directory ${dir} does not exist: create it (mkdir -p ${dir}) or mount the share there`;
      if (errnoOf(err) === "EACCES") return `directory ${dir} cannot be reached (EACCES on a parent): fix the permissions of its parent directories`;
      throw err;
    }
    if (!st.isDirectory()) return `${dir} is not a directory: point ${field} at the directory that holds the snapshots`;
    try {
      await access(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      const code = errnoOf(err);
      if (code === "EROFS") return `directory ${dir} is on a read-only file system: mount it read-write`;
      if (code === "EACCES" || code === "EPERM") {
        return `directory ${dir} is not writable by this user (uid ${process.getuid?.() ?? "?"}): fix its permissions (chown or chmod) or the share's export options`;
      }
      throw err;
    }
    // access() trusts the mode bits; a read-only mount or an export that squashes root refuses only the real write.
    const probe = join(dir, `.vrb-write-check-${process.pid}-${Date.now()}.vrb-lock`);
    try {
      const fh = await open(probe, "wx");
      await fh.close();
      await unlink(probe);
    } catch (err) {
      const code = errnoOf(err);
      if (code === "EROFS") return `directory ${dir} is on a read-only file system: mount it read-write`;
      if (code === "EACCES" || code === "EPERM") return `directory ${dir} refuses new files (${code}): fix its permissions or the share's export options (root squash?)`;
      throw err;
    }
    return undefined;
  }

  async list(prefix: string, opts: { signal?: AbortSignal; limit?: number } = {}): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    try {
      await this.requireRoot();
      for await (const e of walk(this.container, prefix, { signal: opts.signal })) {
        if (e.kind !== "object") continue;
        const st = await stat(e.path, { bigint: true }).catch(() => undefined);
        if (!st) continue; // deleted while listing
        out.push({ key: e.key, bytes: Number(st.size), modified: new Date(Number(st.mtimeMs)), etag: etagOf(st) });
        if (opts.limit !== undefined && out.length >= opts.limit) break;
      }
    } catch (err) {
      throw fsFailure("could not list", this.url(prefix), err);
    }
    return out;
  }

  async listFolders(prefix: string, _opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const out: string[] = [];
    try {
      await this.requireRoot();
      const { dir, first } = startOf(prefix);
      const path = dir ? join(this.container, ...dir.split("/")) : this.container;
      const names = await readdir(path, { withFileTypes: true }).catch((err: unknown) => {
        if (isMissing(err)) return [];
        throw err;
      });
      for (const d of names) {
        if (!d.name.startsWith(first) || isInternalName(d.name)) continue;
        const child = join(path, d.name);
        // S3 shows no folder that holds no object (e.g. only an unfinished upload).
        if ((await stat(child).catch(() => undefined))?.isDirectory() && (await holdsObject(child))) out.push(`${dir ? `${dir}/` : ""}${d.name}/`);
      }
    } catch (err) {
      throw fsFailure("could not list", this.url(prefix), err);
    }
    return out.sort();
  }

  async head(key: string, _opts: { version?: string; signal?: AbortSignal } = {}): Promise<ObjectDetails | undefined> {
    const file = pathOf(this.container, key);
    try {
      const st = await stat(file, { bigint: true });
      if (!st.isFile()) return undefined;
      return { key, bytes: Number(st.size), modified: new Date(Number(st.mtimeMs)), etag: etagOf(st) };
    } catch (err) {
      if (isMissing(err)) {
        await this.requireRoot().catch((e: unknown) => {
          throw fsFailure("could not read", this.url(key), e);
        });
        return undefined;
      }
      throw fsFailure("could not read", this.url(key), err);
    }
  }

  async readText(key: string, _opts: { signal?: AbortSignal } = {}): Promise<{ text: string; etag?: string } | undefined> {
    const file = pathOf(this.container, key);
    try {
      // One open file: the etag is the one of the bytes read, even if a writer renames a new file in meanwhile.
      const fh = await open(file, "r");
      try {
        const st = await fh.stat({ bigint: true });
        return { text: await fh.readFile("utf8"), etag: etagOf(st) };
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (isMissing(err)) {
        await this.requireRoot().catch((e: unknown) => {
          throw fsFailure("could not read", this.url(key), e);
        });
        return undefined;
      }
      throw fsFailure("could not read", this.url(key), err);
    }
  }

  async writeText(key: string, text: string, opts: WriteOptions = {}): Promise<WrittenObject> {
    const file = pathOf(this.container, key);
    const url = this.url(key);
    try {
      await this.requireRoot();
      const etag = await writeTextFile({ root: this.container, file, key, url, text, ifAbsent: opts.ifAbsent, ifMatch: opts.ifMatch, signal: opts.signal });
      return { key, etag };
    } catch (err) {
      throw fsFailure("could not write", url, err);
    }
  }

  async openRead(key: string, _opts: ReadOptions = {}): Promise<{ body: Readable; bytes: number; version?: string }> {
    const file = pathOf(this.container, key);
    // The open file is the version first read: a file renamed over it later does not change these bytes, so no resume is needed.
    let fh;
    try {
      fh = await open(file, "r");
    } catch (err) {
      if (isMissing(err)) throw new OperationError(`${this.url(key)} does not exist`, { cause: err });
      throw fsFailure("could not read", this.url(key), err);
    }
    try {
      const st = await fh.stat();
      return { body: fh.createReadStream({ highWaterMark: 1024 * 1024, autoClose: true }), bytes: st.size };
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw fsFailure("could not read", this.url(key), err);
    }
  }

  createUpload(opts: UploadOptions): ObjectUpload {
    return new FileUpload({ root: this.container, fileOf: (key) => pathOf(this.container, key), url: (key) => this.url(key) }, opts);
  }

  async listIncompleteUploads(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<IncompleteUpload[]> {
    const out: IncompleteUpload[] = [];
    try {
      await this.requireRoot();
      for await (const e of walk(this.container, prefix, { uploads: true, signal: opts.signal })) {
        if (e.kind !== "upload") continue;
        const st = await lstat(e.path).catch(() => undefined);
        if (st) out.push({ key: e.key, id: e.id, started: st.mtime });
      }
    } catch (err) {
      throw fsFailure("could not list the unfinished uploads under", this.url(prefix), err);
    }
    return out;
  }

  async abortUploads(key: string, opts: { own?: OwnUploads; deadlineMs?: number } = {}): Promise<{ aborted: string[]; left: string[]; error?: string }> {
    const file = pathOf(this.container, key);
    const aborted: string[] = [];
    const left: string[] = [];
    let error: string | undefined;
    // Removing a temporary file is one local call: there is nothing to look at again later.
    for (const u of await this.listIncompleteUploads(key)) {
      if (u.key !== key || (opts.own && !opts.own.ids.includes(u.id))) continue;
      try {
        await unlink(join(dirname(file), u.id));
        aborted.push(u.id);
      } catch (err) {
        if (isMissing(err)) continue;
        left.push(u.id);
        error ??= describeFsError(err);
      }
    }
    if (aborted.length) await syncDir(dirname(file)).catch(() => undefined);
    return error === undefined ? { aborted, left } : { aborted, left, error };
  }

  async versions(key: string): Promise<WrittenObject[]> {
    const head = await this.head(key);
    return head ? [{ key, etag: head.etag }] : [];
  }

  async delete(key: string, opts: { version?: string; signal?: AbortSignal } = {}): Promise<void> {
    const file = pathOf(this.container, key);
    const dir = dirname(file);
    try {
      // Under the writers' lock, so a conditional write never renames over a file deleted after its compare.
      const removed = await withFileLock(
        join(dir, lockName(basename(file))),
        async () => {
          try {
            await unlink(file);
            return true;
          } catch (err) {
            if (isMissing(err)) return false;
            throw err;
          }
        },
        { signal: opts.signal },
      ).catch((err: unknown) => {
        if (isMissing(err)) return false; // its folder is gone: so is the object
        throw err;
      });
      if (removed) {
        // A delete beside this one (a prune deletes several at a time) may have emptied and removed
        // the folder already: the entry went with it.
        await syncDir(dir).catch((err: unknown) => {
          if (!isMissing(err)) throw err;
        });
        await removeEmptyDirs(this.container, dir);
      }
    } catch (err) {
      throw fsFailure("could not delete", this.url(key), err);
    }
  }

  async lock(obj: WrittenObject): Promise<void> {
    throw new StoreCapabilityError(`cannot lock ${this.url(obj.key)}: ${NO_IMMUTABILITY}`);
  }

  async setLegalHold(obj: WrittenObject): Promise<void> {
    throw new StoreCapabilityError(`cannot set a legal hold on ${this.url(obj.key)}: ${NO_IMMUTABILITY}`);
  }

  async presign(key: string): Promise<string> {
    throw new StoreCapabilityError(`cannot pre-sign ${this.url(key)}: a directory serves no URLs; copy the file or use an S3, GCS or Azure destination`);
  }

  describeError(err: unknown): string {
    return describeFsError(err);
  }

  close(): void {}

  /** A missing store directory is an error, never an empty listing: an unmounted share must not look like "no backups". */
  private async requireRoot(): Promise<void> {
    let st;
    try {
      st = await stat(this.container);
    } catch (err) {
      if (isMissing(err)) throw Object.assign(new Error(`directory ${this.container} does not exist (is the share mounted?)`), { code: errnoOf(err) });
      throw err;
    }
    if (!st.isDirectory()) throw Object.assign(new Error(`${this.container} is not a directory`), { code: "ENOTDIR" });
  }
}
