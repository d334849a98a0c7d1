import { Readable } from "node:stream";
import { GetObjectCommand, HeadObjectCommand, type GetObjectCommandOutput, ListObjectsV2Command, type S3Client, type _Object } from "@aws-sdk/client-s3";
import { ConfigError, OperationError } from "../errors.js";
import { describeS3Error, isMissingObject, retryS3Call, s3ErrorInfo } from "../s3/client.js";
import { MANIFEST_SUFFIX, SNAPSHOT_SUFFIX, manifestKeyFor, parseManifest, parseSnapshotKey, type SnapshotManifest } from "./manifest.js";

export type SnapshotStatus = "good" | "incomplete" | "invalid-manifest";

export interface StoredSnapshot {
  bucket: string;
  key: string;
  cluster: string;
  takenAt: Date;
  raftIndex: number;
  bytes: number;
  status: SnapshotStatus;
  manifest?: SnapshotManifest;
  /** Why it is not good, when it is not. */
  problem?: string;
}

export interface ObjectRetention {
  mode?: "GOVERNANCE" | "COMPLIANCE";
  until?: Date;
  legalHold?: boolean;
}

/**
 * Good and not marked suspect by the shrink guard: what `latest` may be, and what the guard
 * compares with. A suspect snapshot is still good (complete, checked) and restorable when named.
 */
export function isTrustedSnapshot(s: StoredSnapshot): boolean {
  return s.status === "good" && !s.manifest?.suspect;
}

/**
 * A damaged snapshot: its manifest exists (the backup finished) but the object no longer matches
 * it (another size, a truncated or replaced object) or the manifest does not parse. Never `latest`;
 * `vrb verify latest`, `vrb status --check` and the metric vrb_invalid_snapshots make it seen.
 */
export function isDamagedSnapshot(s: StoredSnapshot): boolean {
  return s.status === "invalid-manifest";
}

/** The damaged snapshots newer than `than` in a newest-first listing (what `latest` skipped to reach it); all of them without `than`. */
export function damagedNewerThan(list: StoredSnapshot[], than: StoredSnapshot | undefined): StoredSnapshot[] {
  const at = than ? list.findIndex((s) => s.key === than.key) : -1;
  return (at < 0 ? list : list.slice(0, at)).filter(isDamagedSnapshot);
}

/** A parsed snapshot reference: `latest`, `s3://bucket/key`, or a bare key in the store's bucket. */
export type SnapshotRef = { latest: true } | { bucket: string; key: string };

export function parseSnapshotRef(ref: string, defaultBucket?: string): SnapshotRef {
  if (ref === "latest") return { latest: true };
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(ref);
  if (m) return { bucket: m[1]!, key: m[2]! };
  if (ref.startsWith("s3://")) throw new ConfigError(`snapshot reference '${ref}' needs a key: s3://BUCKET/KEY`, { field: "ref" });
  if (!defaultBucket) throw new ConfigError(`snapshot reference '${ref}' has no bucket; use s3://BUCKET/KEY or 'latest'`, { field: "ref" });
  return { bucket: defaultBucket, key: ref.replace(/^\/+/, "") };
}

/**
 * The snapshots of one bucket + prefix. Reads only: writing is the backup pipeline's, deleting
 * is retention's. A snapshot is "good" only when its manifest exists, parses and agrees with the
 * object's size; anything else is "incomplete" and never restored as latest.
 */
export class SnapshotStore {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
    readonly prefix: string = "",
  ) {}

  clusterPrefix(cluster: string): string {
    return `${this.prefix}${cluster}/`;
  }

  /** Every snapshot of `cluster` (or under the prefix), newest first. */
  async list(cluster?: string): Promise<StoredSnapshot[]> {
    const objects: _Object[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: cluster ? this.clusterPrefix(cluster) : this.prefix,
          ContinuationToken: token,
        }),
      );
      objects.push(...(page.Contents ?? []));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const manifests = new Set(objects.filter((o) => o.Key?.endsWith(MANIFEST_SUFFIX)).map((o) => o.Key!));
    const snapshots = objects.filter((o) => o.Key?.endsWith(SNAPSHOT_SUFFIX));
    const out: StoredSnapshot[] = [];
    for (const o of snapshots) {
      const key = o.Key!;
      const parsed = parseSnapshotKey(key);
      if (!parsed || (cluster && parsed.cluster !== cluster)) continue;
      const base: StoredSnapshot = {
        bucket: this.bucket,
        key,
        cluster: parsed.cluster,
        takenAt: parsed.takenAt,
        raftIndex: parsed.index,
        bytes: o.Size ?? 0,
        status: "incomplete",
      };
      if (!manifests.has(manifestKeyFor(key))) {
        out.push({ ...base, problem: "no manifest (the backup did not finish)" });
        continue;
      }
      try {
        const manifest = await this.readManifest(key);
        if (!manifest) out.push({ ...base, problem: "no manifest" });
        else if (manifest.bytes !== base.bytes || manifest.key !== key) {
          out.push({ ...base, status: "invalid-manifest", manifest, problem: `manifest says ${manifest.bytes} bytes for ${manifest.key}, object has ${base.bytes}` });
        } else out.push({ ...base, status: "good", manifest, takenAt: new Date(manifest.takenAt) });
      } catch (err) {
        out.push({ ...base, status: "invalid-manifest", problem: err instanceof Error ? err.message : String(err) });
      }
    }
    return out.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || b.raftIndex - a.raftIndex);
  }

  /** `latest`: the newest good snapshot that the shrink guard did not mark suspect. */
  async latestGood(cluster?: string): Promise<StoredSnapshot> {
    const good = (await this.list(cluster)).find(isTrustedSnapshot);
    if (!good) {
      throw new OperationError(
        `no good snapshot of ${cluster ? `cluster '${cluster}'` : "any cluster"} in s3://${this.bucket}/${cluster ? this.clusterPrefix(cluster) : this.prefix}`,
      );
    }
    return good;
  }

  /** Resolves a reference to one snapshot with its manifest (which must exist). */
  async resolve(ref: SnapshotRef | string, cluster?: string): Promise<StoredSnapshot> {
    const r = typeof ref === "string" ? parseSnapshotRef(ref, this.bucket) : ref;
    if ("latest" in r) return this.latestGood(cluster);
    if (r.bucket !== this.bucket) return new SnapshotStore(this.s3, r.bucket, this.prefix).resolve({ bucket: r.bucket, key: r.key });
    const parsed = parseSnapshotKey(r.key);
    let head;
    try {
      head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: r.key }));
    } catch (err) {
      if (isMissingObject(err)) throw new OperationError(`snapshot s3://${this.bucket}/${r.key} does not exist`);
      throw err;
    }
    const manifest = await this.readManifest(r.key);
    const base: StoredSnapshot = {
      bucket: this.bucket,
      key: r.key,
      cluster: manifest?.cluster ?? parsed?.cluster ?? "unknown",
      takenAt: manifest ? new Date(manifest.takenAt) : (parsed?.takenAt ?? head.LastModified ?? new Date(0)),
      raftIndex: manifest?.raft.index ?? parsed?.index ?? 0,
      bytes: head.ContentLength ?? 0,
      status: manifest ? "good" : "incomplete",
      manifest,
      problem: manifest ? undefined : "no manifest (the backup did not finish)",
    };
    return base;
  }

  async readManifest(snapshotKey: string): Promise<SnapshotManifest | undefined> {
    const key = manifestKeyFor(snapshotKey);
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return parseManifest(await res.Body!.transformToString("utf8"), key);
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw err;
    }
  }

  /**
   * Opens a snapshot's download. The request is retried like a part upload (5xx, throttling,
   * resets: retryS3Call); a body cut part-way is resumed where it stopped with a ranged GET of the
   * same object version (or ETag), up to `resumes` times, so the reader sees one whole stream.
   */
  async openSnapshot(key: string, opts: { signal?: AbortSignal; resumes?: number; onResume?: (message: string) => void } = {}): Promise<{ body: Readable; bytes: number }> {
    const { signal } = opts;
    const get = (extra: { Range?: string; VersionId?: string; IfMatch?: string } = {}) =>
      retryS3Call(() => this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...extra }), { abortSignal: signal }), { signal });
    let first: GetObjectCommandOutput;
    try {
      first = await get();
    } catch (err) {
      if (isMissingObject(err)) throw new OperationError(`snapshot s3://${this.bucket}/${key} does not exist`);
      throw err;
    }
    const bytes = first.ContentLength ?? 0;
    // Pin what is resumed to what was started: the version when the bucket has versioning, else the ETag.
    const pin = first.VersionId && first.VersionId !== "null" ? { VersionId: first.VersionId } : first.ETag ? { IfMatch: first.ETag } : {};
    const where = `s3://${this.bucket}/${key}`;
    const maxResumes = opts.resumes ?? 5;
    async function* resumable(): AsyncGenerator<Buffer> {
      let body = first.Body as Readable;
      let offset = 0;
      let resumes = 0;
      try {
        for (;;) {
          try {
            for await (const chunk of body) {
              offset += (chunk as Buffer).length;
              yield chunk as Buffer;
            }
            if (!bytes || offset >= bytes) return;
            throw new Error(`the download ended after ${offset} of ${bytes} bytes`);
          } catch (err) {
            body.destroy();
            if (signal?.aborted || resumes >= maxResumes || !s3ErrorInfo(err).retryable) throw err;
            resumes++;
            opts.onResume?.(`the download of ${where} broke after ${offset} bytes (${describeS3Error(err)}); resuming there (${resumes}/${maxResumes})`);
            body = (await get({ Range: `bytes=${offset}-`, ...pin })).Body as Readable;
          }
        }
      } finally {
        body.destroy();
      }
    }
    return { body: Readable.from(resumable(), { objectMode: false }), bytes };
  }

  /** Object-lock retention as reported by HEAD (works on AWS, SeaweedFS and moto alike). */
  async retention(key: string): Promise<ObjectRetention> {
    const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    return {
      mode: head.ObjectLockMode as ObjectRetention["mode"],
      until: head.ObjectLockRetainUntilDate,
      legalHold: head.ObjectLockLegalHoldStatus === "ON",
    };
  }
}
