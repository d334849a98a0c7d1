import type { Readable } from "node:stream";
import { ConfigError, IntegrityError, OperationError } from "../errors.js";
import { mapLimit } from "../map-limit.js";
import type { ObjectInfo, ObjectStore } from "../storage/object-store.js";
import { FILES_SUFFIX, MANIFEST_SUFFIX, SNAPSHOT_SUFFIX, manifestKeyFor, parseManifest, parseSnapshotKey, type SnapshotManifest } from "../snapshot/manifest.js";

export type SnapshotStatus = "good" | "incomplete" | "invalid-manifest";

export interface StoredSnapshot {
  /** The bucket, container or directory that holds it (the store's container). */
  bucket: string;
  key: string;
  /** Where it is, in the store's own URL scheme (s3://bucket/key, gs://..., file:///...): what messages print. */
  url: string;
  cluster: string;
  takenAt: Date;
  raftIndex: number;
  bytes: number;
  /** The snapshot object's etag in the listing (undefined where the store gives none): it changes when the object is replaced. */
  etag?: string;
  status: SnapshotStatus;
  manifest?: SnapshotManifest;
  /** Why it is not good, when it is not. */
  problem?: string;
}

/** What an interrupted deletion left of a snapshot whose object is gone (SnapshotStore.leftovers). */
export interface SnapshotLeftover {
  /** The snapshot's key (no longer there). */
  key: string;
  /** The objects still there: its manifest, its files archive. */
  objects: string[];
  /** When the newest of them was written, where the store says. */
  modified?: Date;
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

/** A snapshot object as the listing shows it: its key's cluster, time and raft index, and whether a manifest is beside it. */
interface ListedSnapshot {
  key: string;
  bytes: number;
  etag?: string;
  cluster: string;
  takenAt: Date;
  raftIndex: number;
  /** The manifest's etag in the listing; undefined when there is no manifest (or the store gives none). */
  manifestEtag?: string;
  hasManifest: boolean;
}

/**
 * Manifests already read, by snapshot key, with the etag the listing showed for each. A manifest
 * is written once and never rewritten, so a process that lists the same store again and again (the
 * exporter, every interval) reads only the manifests that are new, or whose etag changed.
 */
export type ManifestCache = Map<string, { etag: string; manifest: SnapshotManifest }>;

/**
 * Manifests (or HEADs) read at once. One at a time, `vrb list` of 1,000 snapshots 20 ms away took
 * 48 s, and 7 s like this (docs/benchmarks.md, "Catalogue"); the AWS SDK's agent allows 50 sockets
 * per host.
 */
const MANIFEST_READS_AT_ONCE = 16;

/** Newest first: by time, then by raft index (two snapshots in one second). */
export function newestFirst(a: { takenAt: Date; raftIndex: number }, b: { takenAt: Date; raftIndex: number }): number {
  return b.takenAt.getTime() - a.takenAt.getTime() || b.raftIndex - a.raftIndex;
}

/** A parsed snapshot reference: `latest`, a store URL (`s3://bucket/key`), or a bare key in the store's container. */
export type SnapshotRef = { latest: true } | { bucket: string; key: string };

/**
 * Parses an S3 reference before any store exists (the CLI takes a policy's bucket and cluster
 * from `s3://BUCKET/KEY`). A store parses references in its own scheme: SnapshotStore.parseRef.
 */
export function parseSnapshotRef(ref: string, defaultBucket?: string): SnapshotRef {
  if (ref === "latest") return { latest: true };
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(ref);
  if (m) return { bucket: m[1]!, key: m[2]! };
  if (ref.startsWith("s3://")) throw new ConfigError(`snapshot reference '${ref}' needs a key: s3://BUCKET/KEY`, { field: "ref" });
  if (!defaultBucket) throw new ConfigError(`snapshot reference '${ref}' has no bucket; use s3://BUCKET/KEY or 'latest'`, { field: "ref" });
  return { bucket: defaultBucket, key: ref.replace(/^\/+/, "") };
}

/** `s3://`, `gs://`, `file://`...: a reference that names its store by scheme rather than a bare key. */
const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//;

/**
 * The snapshots of one store (its container and prefix). Reads only: writing is the backup
 * pipeline's, deleting is retention's. A snapshot is "good" only when its manifest exists, parses
 * and agrees with the object's size; anything else is "incomplete" and never restored as latest.
 */
export class SnapshotStore {
  private readonly manifestCache?: ManifestCache;

  constructor(
    readonly objects: ObjectStore,
    opts: { manifestCache?: ManifestCache } = {},
  ) {
    this.manifestCache = opts.manifestCache;
  }

  /** The bucket, container or directory (kept under this name for reports written before other stores). */
  get bucket(): string {
    return this.objects.container;
  }

  get prefix(): string {
    return this.objects.prefix;
  }

  /** The store's URL of `key` (of the container and prefix without one). */
  url(key?: string): string {
    return this.objects.url(key ?? this.prefix);
  }

  clusterPrefix(cluster: string): string {
    return `${this.prefix}${cluster}/`;
  }

  /** The same snapshots' store for a snapshot in another container (a reference naming another bucket). */
  forSnapshot(s: StoredSnapshot): SnapshotStore {
    return s.bucket === this.bucket ? this : new SnapshotStore(this.objects.withContainer(s.bucket));
  }

  /** Parses `latest`, a URL in this store's scheme, or a bare key in its container. */
  parseRef(ref: string): SnapshotRef {
    if (ref === "latest") return { latest: true };
    const parsed = this.objects.parseUrl(ref);
    if (parsed) return { bucket: parsed.container, key: parsed.key };
    const scheme = URL_SCHEME.exec(ref)?.[1];
    if (scheme) {
      const own = URL_SCHEME.exec(this.objects.url())?.[1];
      if (scheme === own) {
        const example = this.objects.type === "s3" ? "s3://BUCKET/KEY" : this.objects.url("KEY");
        throw new ConfigError(`snapshot reference '${ref}' needs a key: ${example}`, { field: "ref" });
      }
      throw new ConfigError(
        `snapshot reference '${ref}' is a ${scheme}:// URL, but destination '${this.objects.name}' is a ${this.objects.type} store: use ${this.objects.url("KEY")}, a bare key, or 'latest'`,
        { field: "ref" },
      );
    }
    return { bucket: this.bucket, key: ref.replace(/^\/+/, "") };
  }

  /** Every snapshot of `cluster` (or under the prefix), newest first. `signal` cancels the reads (an interrupted command). */
  async list(cluster?: string, opts: { signal?: AbortSignal } = {}): Promise<StoredSnapshot[]> {
    return this.describeListed(await this.listed(cluster, opts), opts.signal);
  }

  /** `list` and `leftovers` of one cluster from one listing of the store (what a prune needs). */
  async listWithLeftovers(cluster: string, opts: { signal?: AbortSignal } = {}): Promise<{ snapshots: StoredSnapshot[]; leftovers: SnapshotLeftover[] }> {
    const objects = await this.objectsOf(cluster, opts);
    return { snapshots: await this.describeListed(this.listedIn(objects, cluster), opts.signal), leftovers: leftoversIn(objects, cluster) };
  }

  /**
   * The newest snapshot that `accept` takes, and every snapshot newer than it (all of them when
   * none is taken): what `list(cluster).find(accept)` finds, without reading every manifest. The
   * manifests are read newest first by key, MANIFEST_READS_AT_ONCE at a time, and the reading
   * stops once no snapshot left unread can be newer than the one found. A store keeping a year of
   * hourly snapshots answers `latest` after one round of reads instead of 8,760 in a row.
   */
  async findNewest(
    cluster: string | undefined,
    accept: (s: StoredSnapshot) => boolean,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ found?: StoredSnapshot; newer: StoredSnapshot[] }> {
    const listed = await this.listed(cluster, opts);
    const read: StoredSnapshot[] = [];
    for (let from = 0; from < listed.length; from += MANIFEST_READS_AT_ONCE) {
      const round = listed.slice(from, from + MANIFEST_READS_AT_ONCE);
      read.push(...(await this.describeAll(round, opts.signal)));
      read.sort(newestFirst);
      const at = read.findIndex(accept);
      const unread = listed[from + MANIFEST_READS_AT_ONCE];
      // A key names its time to the second; the manifest's time is the exact one. Snapshots
      // unread are older than the key's second after the one found only when that second is over.
      if (at >= 0 && (!unread || unread.takenAt.getTime() + 1000 <= read[at]!.takenAt.getTime())) {
        return { found: read[at], newer: read.slice(0, at) };
      }
    }
    return { newer: read };
  }

  /** `latest`: the newest good snapshot that the shrink guard did not mark suspect. */
  async latestGood(cluster?: string, opts: { signal?: AbortSignal } = {}): Promise<StoredSnapshot> {
    return (await this.latest(cluster, opts)).snapshot;
  }

  /** `latest`, and the damaged snapshots newer than it that it passed over (what `vrb verify latest` must not keep quiet). */
  async latest(cluster?: string, opts: { signal?: AbortSignal } = {}): Promise<{ snapshot: StoredSnapshot; damagedNewer: StoredSnapshot[] }> {
    const { found, newer } = await this.findNewest(cluster, isTrustedSnapshot, opts);
    if (!found) {
      throw new OperationError(`no good snapshot of ${cluster ? `cluster '${cluster}'` : "any cluster"} in ${this.url(cluster ? this.clusterPrefix(cluster) : this.prefix)}`);
    }
    return { snapshot: found, damagedNewer: newer.filter(isDamagedSnapshot) };
  }

  /** What interrupted deletions left of `cluster`'s snapshots whose object is gone (leftoversIn). */
  async leftovers(cluster: string, opts: { signal?: AbortSignal } = {}): Promise<SnapshotLeftover[]> {
    return leftoversIn(await this.objectsOf(cluster, opts), cluster);
  }

  /** The objects under `cluster`'s folder (or under the prefix). */
  private objectsOf(cluster: string | undefined, opts: { signal?: AbortSignal }): Promise<ObjectInfo[]> {
    return this.objects.list(cluster ? this.clusterPrefix(cluster) : this.prefix, { signal: opts.signal });
  }

  /** The listed snapshots described (their manifests read), newest first. */
  private async describeListed(listed: readonly ListedSnapshot[], signal: AbortSignal | undefined): Promise<StoredSnapshot[]> {
    return (await this.describeAll(listed, signal)).sort(newestFirst);
  }

  /** The snapshot objects under `cluster`'s folder (or the prefix), newest first by their keys. */
  private async listed(cluster: string | undefined, opts: { signal?: AbortSignal }): Promise<ListedSnapshot[]> {
    return this.listedIn(await this.objectsOf(cluster, opts), cluster);
  }

  /** The snapshot objects of a listing, newest first by their keys, before any manifest is read. */
  private listedIn(objects: readonly ObjectInfo[], cluster: string | undefined): ListedSnapshot[] {
    const manifests = new Map(objects.filter((o) => o.key.endsWith(MANIFEST_SUFFIX)).map((o) => [o.key, o.etag]));
    const out: ListedSnapshot[] = [];
    for (const o of objects) {
      if (!o.key.endsWith(SNAPSHOT_SUFFIX)) continue;
      const parsed = parseSnapshotKey(o.key);
      if (!parsed || (cluster && parsed.cluster !== cluster)) continue;
      const manifestKey = manifestKeyFor(o.key);
      out.push({
        key: o.key,
        bytes: o.bytes,
        etag: o.etag,
        cluster: parsed.cluster,
        takenAt: parsed.takenAt,
        raftIndex: parsed.index,
        hasManifest: manifests.has(manifestKey),
        manifestEtag: manifests.get(manifestKey),
      });
    }
    this.forgetGone(cluster ? this.clusterPrefix(cluster) : this.prefix, out);
    return out.sort(newestFirst);
  }

  /** The listed snapshot's manifest, from the cache when its etag is the one cached. */
  private async cachedManifest(l: ListedSnapshot, signal: AbortSignal): Promise<SnapshotManifest | undefined> {
    const cached = l.manifestEtag === undefined ? undefined : this.manifestCache?.get(l.key);
    if (cached && cached.etag === l.manifestEtag) return cached.manifest;
    const manifest = await this.readManifest(l.key, { signal });
    // Keyed by the listing's etag: a manifest rewritten since the listing is read again next time.
    if (manifest && l.manifestEtag !== undefined) this.manifestCache?.set(l.key, { etag: l.manifestEtag, manifest });
    return manifest;
  }

  /** Drops the cached manifests of snapshots under `prefix` that the listing no longer shows (pruned). */
  private forgetGone(prefix: string, listed: readonly ListedSnapshot[]): void {
    if (!this.manifestCache?.size) return;
    const present = new Set(listed.map((l) => l.key));
    for (const key of this.manifestCache.keys()) if (key.startsWith(prefix) && !present.has(key)) this.manifestCache.delete(key);
  }

  /** Each listed snapshot described, MANIFEST_READS_AT_ONCE manifests read at a time, in the listing's order. */
  private describeAll(listed: readonly ListedSnapshot[], signal: AbortSignal | undefined): Promise<StoredSnapshot[]> {
    return mapLimit(listed, MANIFEST_READS_AT_ONCE, (l, s) => this.describe(l, s), signal);
  }

  /** One listed snapshot with its manifest read and checked against the object. */
  private async describe(l: ListedSnapshot, signal: AbortSignal): Promise<StoredSnapshot> {
    const base: StoredSnapshot = {
      bucket: this.bucket,
      key: l.key,
      url: this.objects.url(l.key),
      cluster: l.cluster,
      takenAt: l.takenAt,
      raftIndex: l.raftIndex,
      bytes: l.bytes,
      ...(l.etag === undefined ? {} : { etag: l.etag }),
      status: "incomplete",
    };
    if (!l.hasManifest) return { ...base, problem: "no manifest (the backup did not finish)" };
    let manifest: SnapshotManifest | undefined;
    try {
      manifest = await this.cachedManifest(l, signal);
    } catch (err) {
      // A manifest that is there but damaged is this snapshot's problem. A store that did not
      // answer is not: passing over a good snapshot because one read failed would make `latest`
      // an older one, or none, without saying why.
      if (!(err instanceof IntegrityError)) throw err;
      return { ...base, status: "invalid-manifest", problem: err.message };
    }
    if (!manifest) return { ...base, problem: "no manifest" };
    if (manifest.bytes !== base.bytes || manifest.key !== l.key) {
      return { ...base, status: "invalid-manifest", manifest, problem: `manifest says ${manifest.bytes} bytes for ${manifest.key}, object has ${base.bytes}` };
    }
    return { ...base, status: "good", manifest, takenAt: new Date(manifest.takenAt) };
  }

  /** Resolves a reference to one snapshot with its manifest (which must exist). */
  async resolve(ref: SnapshotRef | string, cluster?: string, opts: { signal?: AbortSignal } = {}): Promise<StoredSnapshot> {
    const r = typeof ref === "string" ? this.parseRef(ref) : ref;
    if ("latest" in r) return this.latestGood(cluster, opts);
    if (r.bucket !== this.bucket) return new SnapshotStore(this.objects.withContainer(r.bucket)).resolve({ bucket: r.bucket, key: r.key }, undefined, opts);
    const parsed = parseSnapshotKey(r.key);
    const url = this.objects.url(r.key);
    const head = await this.objects.head(r.key, { signal: opts.signal });
    if (!head) throw new OperationError(`snapshot ${url} does not exist`);
    const manifest = await this.readManifest(r.key, opts);
    return {
      bucket: this.bucket,
      key: r.key,
      url,
      cluster: manifest?.cluster ?? parsed?.cluster ?? "unknown",
      takenAt: manifest ? new Date(manifest.takenAt) : (parsed?.takenAt ?? head.modified ?? new Date(0)),
      raftIndex: manifest?.raft.index ?? parsed?.index ?? 0,
      bytes: head.bytes,
      status: manifest ? "good" : "incomplete",
      manifest,
      problem: manifest ? undefined : "no manifest (the backup did not finish)",
    };
  }

  async readManifest(snapshotKey: string, opts: { signal?: AbortSignal } = {}): Promise<SnapshotManifest | undefined> {
    const key = manifestKeyFor(snapshotKey);
    const stored = await this.objects.readText(key, { signal: opts.signal });
    return stored ? parseManifest(stored.text, key) : undefined;
  }

  /**
   * Opens a snapshot's download. The store retries the request and resumes a body cut part-way
   * where it stopped, pinned to the version first read, up to `resumes` times, so the reader sees
   * one whole stream.
   */
  async openSnapshot(key: string, opts: { signal?: AbortSignal; resumes?: number; onResume?: (message: string) => void } = {}): Promise<{ body: Readable; bytes: number }> {
    const { body, bytes } = await this.objects.openRead(key, opts);
    return { body, bytes };
  }

  /** Immutability of the object's current version as the store reports it (none where it has none). */
  async retention(key: string, opts: { signal?: AbortSignal } = {}): Promise<ObjectRetention> {
    const head = await this.objects.head(key, { signal: opts.signal });
    if (!head) throw new OperationError(`${this.objects.url(key)} does not exist`);
    return { mode: head.lock?.mode, until: head.lock?.until, legalHold: Boolean(head.lock?.legalHold) };
  }

  /**
   * Each snapshot's immutability, in the same order; undefined where the store would not say (a
   * reader that may not HEAD still gets its list). A few at a time: thousands of HEADs at once
   * would queue for sockets past the store's deadline, and their locks would go missing unsaid.
   */
  async retentions(snapshots: readonly StoredSnapshot[], opts: { signal?: AbortSignal } = {}): Promise<(ObjectRetention | undefined)[]> {
    return mapLimit(snapshots, MANIFEST_READS_AT_ONCE, (s, signal) => this.retention(s.key, { signal }).catch(() => undefined), opts.signal);
  }
}

/**
 * What is left of snapshots whose object is gone: a manifest or a files archive under a
 * snapshot's key without the snapshot (a prune interrupted between its deletes, or a snapshot
 * deleted by hand). A backup writes the snapshot before either, so none is a backup in progress.
 * By snapshot key, newest first (a key names its time), with the objects left and when the newest
 * of them was written.
 */
function leftoversIn(objects: readonly ObjectInfo[], cluster: string): SnapshotLeftover[] {
  const present = new Set(objects.map((o) => o.key));
  const byKey = new Map<string, SnapshotLeftover>();
  for (const o of objects) {
    const suffix = [MANIFEST_SUFFIX, FILES_SUFFIX].find((x) => o.key.endsWith(x));
    const key = suffix && o.key.slice(0, -suffix.length);
    if (!key || present.has(key) || parseSnapshotKey(key)?.cluster !== cluster) continue;
    const left = byKey.get(key) ?? { key, objects: [] };
    left.objects.push(o.key);
    if (o.modified && !(left.modified && left.modified >= o.modified)) left.modified = o.modified;
    byKey.set(key, left);
  }
  return [...byKey.values()].sort((a, b) => b.key.localeCompare(a.key));
}
