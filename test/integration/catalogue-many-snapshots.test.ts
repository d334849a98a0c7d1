import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { CopyObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  damagedNewerThan,
  openStore,
  pruneSnapshots,
  readClusterStatus,
  readClusterStatuses,
  runBackup,
  type ComplianceLockCache,
  SnapshotStore,
  validatePolicy,
  type ObjectStore,
} from "../../engine/index.js";
import { isTrustedSnapshot, type ManifestCache } from "../../engine/catalogue/snapshot-store.js";
import { filesKeyFor, manifestKeyFor, snapshotKeyFor, type SnapshotManifest } from "../../engine/snapshot/manifest.js";
import { s3For, s3StoreOn, sharedEnv, tempDir } from "../support/env.js";

// A store that holds many snapshots (a year of hourly backups is 8,760): `latest`, the shrink guard's
// previous snapshot and a damaged snapshot's predecessor are found after reading the newest
// manifests only, and a full listing reads its manifests a few at a time (docs/benchmarks.md,
// "Catalogue"). On a real directory and on the shared SeaweedFS, from one real backup copied to
// further keys an hour apart, each with its own manifest.
const env = sharedEnv();
const HOUR = 3_600_000;
const COPIES = 40;

/** The store with its reads (`readText`, or `head`; of the keys `counts` picks) counted, and the most that were in flight at once. */
function countingReads(
  store: ObjectStore,
  counts: (key: string) => boolean = () => true,
  method: "readText" | "head" = "readText",
): { store: ObjectStore; reads: () => number; mostAtOnce: () => number; reset: () => void } {
  let reads = 0;
  let inFlight = 0;
  let most = 0;
  const counted = new Proxy(store, {
    get(target, p, receiver) {
      if (p === method) {
        const call = (key: string, opts?: { version?: string; signal?: AbortSignal }) => (method === "head" ? target.head(key, opts) : target.readText(key, opts));
        return async (key: string, opts?: { version?: string; signal?: AbortSignal }) => {
          if (!counts(key)) return call(key, opts);
          reads++;
          most = Math.max(most, ++inFlight);
          try {
            return await call(key, opts);
          } finally {
            inFlight--;
          }
        };
      }
      const v = Reflect.get(target, p, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: counted, reads: () => reads, mostAtOnce: () => most, reset: () => ((reads = 0), (most = 0)) };
}

interface StoreUnderTest {
  name: string;
  /** The store, how to put a file's bytes at a key in it, and how to copy a key within it. */
  open(): Promise<{ objects: ObjectStore; put(file: string, key: string): Promise<void>; copy(from: string, to: string): Promise<void>; close(): void }>;
}

const dir = tempDir("catalogue-many");
const s3 = s3For(env);
const run = Date.now().toString(36);
const stores: StoreUnderTest[] = [
  {
    name: "a directory (type: file)",
    open: async () => {
      const objects = await openStore(
        validatePolicy({ cluster: { name: "x", nodes: ["http://127.0.0.1:1"] }, destination: { type: "file", path: dir, prefix: "many/" } }).destination,
      );
      const put = async (file: string, key: string) => {
        mkdirSync(dirname(join(dir, key)), { recursive: true });
        copyFileSync(file, join(dir, key));
      };
      return {
        objects,
        put,
        copy: (from, to) => put(join(dir, from), to),
        close: () => objects.close(),
      };
    },
  },
  {
    name: "S3 (SeaweedFS)",
    open: async () => {
      const objects = s3StoreOn(s3, env.bucket!, `many-${run}/`);
      return {
        objects,
        put: async (file, key) => void (await s3.send(new PutObjectCommand({ Bucket: env.bucket!, Key: key, Body: readFileSync(file) }))),
        copy: async (from, to) => void (await s3.send(new CopyObjectCommand({ Bucket: env.bucket!, Key: to, CopySource: `${env.bucket!}/${from}` }))),
        close: () => undefined,
      };
    },
  },
];

afterAll(() => s3.destroy());

describe.each(stores)("many snapshots on $name", (sut) => {
  let objects: ObjectStore;
  let put: (file: string, key: string) => Promise<void>;
  let copy: (from: string, to: string) => Promise<void>;
  let close: () => void;
  let base: SnapshotManifest;

  /** `count` snapshots of `cluster`, the newest `hoursAgo` ago and then an hour apart, each a copy of the real one with its own manifest; newest first. */
  async function snapshots(cluster: string, count: number, hoursAgo = 0): Promise<string[]> {
    const keys: string[] = [];
    for (let i = 0; i < count; i++) {
      const at = new Date(Date.parse(base.takenAt) - (hoursAgo + i) * HOUR);
      const index = 1000 - i;
      const key = snapshotKeyFor(objects.prefix, cluster, at, index);
      await copy(base.key, key);
      await objects.writeText(manifestKeyFor(key), JSON.stringify({ ...base, cluster, key, takenAt: at.toISOString(), raft: { ...base.raft, index } }));
      keys.push(key);
    }
    return keys;
  }

  beforeAll(async () => {
    ({ objects, put, copy, close } = await sut.open());
    const sourceDir = tempDir("catalogue-many-source");
    const policy = validatePolicy({ cluster: { name: `many-${run}`, nodes: env.nodes.map((n) => n.apiAddr) }, destination: { type: "file", path: sourceDir, prefix: "" } });
    const source = await openStore(policy.destination);
    try {
      const report = await runBackup({ policy, token: env.keys!.rootToken, store: source });
      // The real snapshot, stored once in this store under its prefix: what the copies copy.
      const key = `${objects.prefix}real/${basename(report.key)}`;
      await put(join(sourceDir, report.key), key);
      base = { ...(JSON.parse((await source.readText(manifestKeyFor(report.key)))!.text) as SnapshotManifest), key };
    } finally {
      source.close();
    }
  }, 120_000);

  afterAll(() => close?.());

  it("'latest' is found after one round of manifest reads; the full listing reads every manifest, several at a time and never more than 16", async () => {
    const cluster = "tidy";
    const keys = await snapshots(cluster, COPIES);
    const counted = countingReads(objects);
    const store = new SnapshotStore(counted.store);

    const latest = await store.latest(cluster);
    expect(latest.snapshot.key).toBe(keys[0]);
    expect(latest.snapshot.status).toBe("good");
    expect(latest.damagedNewer).toEqual([]);
    expect(counted.reads()).toBeLessThanOrEqual(16);

    counted.reset();
    const all = await store.list(cluster);
    expect(all.map((s) => s.key)).toEqual(keys);
    expect(all.every((s) => s.status === "good")).toBe(true);
    expect(counted.reads()).toBe(COPIES);
    expect(counted.mostAtOnce()).toBeGreaterThan(1);
    expect(counted.mostAtOnce()).toBeLessThanOrEqual(16);

    // Each snapshot's lock, read a few at a time, in the listing's order.
    const retentions = await store.retentions(all);
    expect(retentions).toHaveLength(COPIES);
    expect(retentions.every((r) => r !== undefined && !r.legalHold)).toBe(true);

    // A first prune of the long history: several snapshots deleted at once, reported in the plan's order.
    const report = await pruneSnapshots(store, cluster, { keepLast: 5 });
    expect(report.failed).toEqual([]);
    expect(report.kept.map((k) => k.key)).toEqual(keys.slice(0, 5));
    expect(report.deleted.map((d) => d.key)).toEqual(keys.slice(5));
    expect((await store.list(cluster)).map((s) => s.key)).toEqual(keys.slice(0, 5));
    for (const key of keys.slice(5)) expect(await objects.head(manifestKeyFor(key))).toBeUndefined();
  });

  it("past 20 damaged or unfinished newer snapshots, 'latest' is the 21st and names every damaged one it passed, as the full listing does", async () => {
    const cluster = "damaged";
    const keys = await snapshots(cluster, COPIES);
    // The 20 newest, across two rounds of reads: a manifest that names another size, one that does
    // not parse, and a snapshot whose backup never wrote its manifest, in turn.
    for (const [i, key] of keys.slice(0, 20).entries()) {
      if (i % 3 === 0) await objects.writeText(manifestKeyFor(key), JSON.stringify({ ...base, cluster, key, bytes: base.bytes + 1 }));
      else if (i % 3 === 1) await objects.writeText(manifestKeyFor(key), "{ not json");
      else await objects.delete(manifestKeyFor(key));
    }
    const store = new SnapshotStore(objects);
    const all = await store.list(cluster);
    const latest = await store.latest(cluster);
    expect(latest.snapshot.key).toBe(keys[20]);
    expect(all.find(isTrustedSnapshot)?.key).toBe(keys[20]);
    expect(latest.damagedNewer.map((s) => s.key)).toEqual(damagedNewerThan(all, latest.snapshot).map((s) => s.key));
    expect(latest.damagedNewer).toHaveLength(14);
    expect(latest.damagedNewer.map((s) => s.problem).join("\n")).toMatch(/not valid JSON/);
    expect(latest.damagedNewer.map((s) => s.problem).join("\n")).toMatch(/manifest says \d+ bytes/);
    // The predecessor a damaged snapshot's advice names, by the same reading.
    const before = await store.findNewest(cluster, (s) => isTrustedSnapshot(s) && s.takenAt.getTime() < all[25]!.takenAt.getTime());
    expect(before.found?.key).toBe(keys[26]);
  });

  it("with a manifest cache (the exporter's refreshes), listing again reads only the manifests that are new or changed; a changed object is still caught", async () => {
    const cluster = "cached";
    const keys = await snapshots(cluster, 20);
    const counted = countingReads(objects);
    const cache: ManifestCache = new Map();
    const store = new SnapshotStore(counted.store, { manifestCache: cache });
    expect((await store.list(cluster)).every((s) => s.status === "good")).toBe(true);
    expect(counted.reads()).toBe(20);

    counted.reset();
    expect((await store.list(cluster)).map((s) => s.key)).toEqual(keys);
    expect(counted.reads()).toBe(0);

    // A new snapshot, a manifest written again (its etag changes), a snapshot object replaced by
    // another size and one snapshot deleted: one listing later, two manifests read, and each is seen.
    const [newer] = await snapshots(cluster, 1, -1);
    await objects.writeText(manifestKeyFor(keys[3]!), "{ not json");
    await objects.writeText(keys[5]!, "a few bytes");
    await objects.delete(keys[9]!);
    await objects.delete(manifestKeyFor(keys[9]!));
    counted.reset();
    const again = await store.list(cluster);
    expect(counted.reads()).toBe(2);
    expect(again[0]!.key).toBe(newer);
    expect(again.find((s) => s.key === keys[3])?.status).toBe("invalid-manifest");
    expect(again.find((s) => s.key === keys[5])?.problem).toMatch(/manifest says \d+ bytes .* object has 11/);
    expect(again.some((s) => s.key === keys[9])).toBe(false);
    expect(cache.has(keys[9]!)).toBe(false);
  });

  it("the status of every cluster (vrb status --all-clusters, the exporter): each one, in name order, as read alone, three clusters at a time", async () => {
    const fleet = ["fleet-a", "fleet-b", "fleet-c", "fleet-d", "fleet-e", "fleet-f"];
    for (const [i, cluster] of fleet.entries()) await snapshots(cluster, 2 + i);
    const records = countingReads(objects, (key) => key.endsWith("/vrb-status.json"));
    const now = new Date();

    const all = await readClusterStatuses({ store: records.store, every: "1h", now });
    expect(all.map((s) => s.cluster)).toEqual(all.map((s) => s.cluster).sort());
    const ours = all.filter((s) => fleet.includes(s.cluster));
    expect(ours.map((s) => s.cluster)).toEqual(fleet);
    expect(ours.map((s) => s.goodSnapshots)).toEqual([2, 3, 4, 5, 6, 7]);
    for (const s of ours) expect(s).toEqual(await readClusterStatus({ store: objects, cluster: s.cluster, every: "1h", now }));
    // One status record read per cluster, several clusters at once, never more than three.
    expect(records.reads()).toBe(all.length);
    expect(records.mostAtOnce()).toBeGreaterThan(1);
    expect(records.mostAtOnce()).toBeLessThanOrEqual(3);

    // A named list is read as given, in its order.
    expect((await readClusterStatuses({ store: objects, clusters: ["fleet-c", "fleet-a"], every: "1h", now })).map((s) => s.goodSnapshots)).toEqual([4, 2]);
  });

  it("with a lock cache (the exporter's refreshes), a snapshot under COMPLIANCE is not asked again until its lock ends; the count of locked snapshots stays exact", async () => {
    const cluster = "locks";
    const keys = await snapshots(cluster, 6);
    const heads = countingReads(objects, (key) => key.endsWith(".snap"), "head");
    const complianceLocks: ComplianceLockCache = new Map();
    const refresh = async () => {
      heads.reset();
      const cached = await readClusterStatus({ store: heads.store, cluster, every: "1h", complianceLocks });
      const alone = await readClusterStatus({ store: objects, cluster, every: "1h" });
      expect(cached.lockedSnapshots).toBe(alone.lockedSnapshots);
      return { locked: cached.lockedSnapshots, asked: heads.reads() };
    };
    if (!objects.capabilities.lock) {
      // No locks in this store: nothing to remember, every refresh asks each snapshot.
      expect(await refresh()).toEqual({ locked: 0, asked: 6 });
      expect(await refresh()).toEqual({ locked: 0, asked: 6 });
      expect(complianceLocks.size).toBe(0);
      return;
    }
    // keys[0] under COMPLIANCE for a few seconds, keys[1] for ten minutes, keys[2] under
    // GOVERNANCE (which may be shortened), keys[3] on legal hold, the other two unlocked.
    const briefUntil = new Date(Math.ceil((Date.now() + 6_000) / 1000) * 1000);
    await objects.lock({ key: keys[0]! }, "COMPLIANCE", briefUntil);
    await objects.lock({ key: keys[1]! }, "COMPLIANCE", new Date(Date.now() + 600_000));
    await objects.lock({ key: keys[2]! }, "GOVERNANCE", new Date(Date.now() + 600_000));
    await objects.setLegalHold({ key: keys[3]! }, true);

    expect(await refresh()).toEqual({ locked: 4, asked: 6 });
    expect([...complianceLocks.keys()].sort()).toEqual([keys[0], keys[1]].sort());
    expect(await refresh()).toEqual({ locked: 4, asked: 4 });

    // A legal hold released and another placed: seen at once (those snapshots are asked every time).
    await objects.setLegalHold({ key: keys[3]! }, false);
    await objects.setLegalHold({ key: keys[4]! }, true);
    expect(await refresh()).toEqual({ locked: 4, asked: 4 });

    // keys[1] replaced by other bytes of the same size (a new, unlocked version): its etag changed, so it is asked again.
    const other = join(tempDir("catalogue-many-other"), "other.snap");
    writeFileSync(other, randomBytes(base.bytes));
    await put(other, keys[1]!);
    expect(await refresh()).toEqual({ locked: 3, asked: 5 });
    expect([...complianceLocks.keys()]).toEqual([keys[0]]);

    // Once keys[0]'s lock has ended, it is asked again and counted unlocked.
    await new Promise((r) => setTimeout(r, briefUntil.getTime() + 1_500 - Date.now()));
    expect(await refresh()).toEqual({ locked: 2, asked: 6 });
    expect(complianceLocks.size).toBe(0);
    await objects.setLegalHold({ key: keys[4]! }, false);
  }, 60_000);

  it("what a prune stopped part-way left (a manifest, a files archive, without their snapshot) is removed by the next prune once an hour old", async () => {
    const cluster = "leftovers";
    const keys = await snapshots(cluster, 6);
    // The state a prune killed between its deletes leaves: keys[4]'s snapshot gone and its
    // manifest still there; keys[5]'s snapshot gone, its manifest and files archive still there.
    await objects.writeText(filesKeyFor(keys[5]!), "not a real tar, never read");
    for (const key of [keys[4]!, keys[5]!]) for (const v of await objects.versions(key)) await objects.delete(key, { version: v.version });
    const store = new SnapshotStore(objects);
    expect((await store.list(cluster)).map((s) => s.key)).toEqual(keys.slice(0, 4));
    expect((await store.leftovers(cluster)).map((l) => [l.key, l.objects.length])).toEqual([
      [keys[4], 1],
      [keys[5], 2],
    ]);

    // Written moments ago: kept for now (a listing that lags could show a manifest before its snapshot), and said so.
    const soon = await pruneSnapshots(store, cluster, { keepLast: 10 });
    expect(soon.deleted).toEqual([]);
    expect(soon.kept.slice(-2)).toEqual([
      { key: keys[4], reason: expect.stringMatching(/snapshot object is gone, its manifest left .*less than an hour ago/) },
      { key: keys[5], reason: expect.stringMatching(/snapshot object is gone, its (files archive and manifest|manifest and files archive) left/) },
    ]);

    // An hour on: the dry run names them, and the prune removes every object left, the good snapshots untouched.
    const later = new Date(Date.now() + 2 * HOUR);
    expect((await pruneSnapshots(store, cluster, { keepLast: 10 }, { now: later, dryRun: true })).deleted.map((d) => d.key)).toEqual([keys[4], keys[5]]);
    expect(await store.leftovers(cluster)).toHaveLength(2);
    const report = await pruneSnapshots(store, cluster, { keepLast: 10 }, { now: later });
    expect(report.failed).toEqual([]);
    expect(report.deleted.map((d) => d.key)).toEqual([keys[4], keys[5]]);
    for (const key of [manifestKeyFor(keys[4]!), manifestKeyFor(keys[5]!), filesKeyFor(keys[5]!)]) expect(await objects.head(key)).toBeUndefined();
    expect(await store.leftovers(cluster)).toEqual([]);
    expect((await store.list(cluster)).map((s) => s.key)).toEqual(keys.slice(0, 4));
  });

  it("two snapshots within one second, the newer by its manifest read in the second round: 'latest' reads on and finds it", async () => {
    const cluster = "same-second";
    const older = await snapshots(cluster, COPIES, 1);
    // The keys of one second order by raft index: the one with the higher index is read first, but
    // its manifest says it was taken 800 ms before the other, which the 17th read finds.
    const second = Math.floor(Date.parse(base.takenAt) / 1000) * 1000;
    const early = snapshotKeyFor(objects.prefix, cluster, new Date(second + 100), 5000);
    const late = snapshotKeyFor(objects.prefix, cluster, new Date(second + 900), 10);
    for (const [key, ms, index] of [
      [early, 100, 5000],
      [late, 900, 10],
    ] as const) {
      await copy(base.key, key);
      await objects.writeText(manifestKeyFor(key), JSON.stringify({ ...base, cluster, key, takenAt: new Date(second + ms).toISOString(), raft: { ...base.raft, index } }));
    }
    // 15 newer snapshots, all unfinished, fill the first round up to the early one.
    for (let i = 1; i <= 15; i++) {
      const key = snapshotKeyFor(objects.prefix, cluster, new Date(second + 1000 * i), 6000 + i);
      await copy(base.key, key);
    }
    const store = new SnapshotStore(objects);
    const latest = await store.latest(cluster);
    expect(latest.snapshot.key).toBe(late);
    expect((await store.list(cluster)).find(isTrustedSnapshot)?.key).toBe(late);
    expect(older).toHaveLength(COPIES);
  });
});
