import { randomBytes } from "node:crypto";
import { finished, pipeline } from "node:stream/promises";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, VrbError } from "../../engine/errors.js";
import { StoreCapabilityError, StoreConflictError, StoreLockedError } from "../../engine/storage/errors.js";
import type { ObjectStore, ObjectUpload, StoreCapabilities, UploadOptions } from "../../engine/storage/object-store.js";
import { MiB, chunked, readAll, rejectionOf, sha256, signal } from "./support.js";

// The behaviour every ObjectStore must have, checked on a real store (a real server or a real
// directory; never a mock of its API). Each store's test file calls describeStoreContract with a
// setup that starts its server and opens a store on a container that exists. Everything a run
// writes goes under one fresh folder of the store's prefix, removed at the end.

export interface StoreContractOptions extends StoreCapabilities {
  /** A container that does not exist (default: a random bucket-style name). The file store needs an absolute path. */
  missingContainer?: string;
  /** The field checkContainer names by default: `destination.bucket`, `destination.container` or `destination.path`. */
  containerField: string;
  /** The store's page size for listings (S3: 1000): when set, the list test writes one object more than a page. */
  listPageSize?: number;
  /** Bytes per part for the multi-part upload (S3 needs at least 5 MiB; default 5 MiB). */
  partSize?: number;
  /** The store takes an object in parts of a size that doubles every `partsPerSize` parts (S3, Azure). */
  growingParts?: boolean;
  /** Credential values the store was opened with: no message the store produces may contain one. */
  secrets?: string[];
}

export interface StoreUnderTest {
  store: ObjectStore;
  stop(): Promise<void>;
}

export function describeStoreContract(label: string, setup: () => Promise<StoreUnderTest>, opts: StoreContractOptions): void {
  describe(`ObjectStore contract: ${label}`, () => {
    let sut: StoreUnderTest;
    let store: ObjectStore;
    /** This run's folder: every key of every case lives under it. */
    let root: string;
    const partSize = opts.partSize ?? 5 * MiB;
    const upload = (o: Omit<UploadOptions, "partSize" | "queueSize"> & Partial<UploadOptions>): ObjectUpload => store.createUpload({ partSize, queueSize: 2, ...o });
    const expectNoSecret = (text: string) => {
      for (const s of opts.secrets ?? []) expect(text).not.toContain(s);
    };

    beforeAll(async () => {
      sut = await setup();
      store = sut.store;
      root = `${store.prefix}contract-${randomBytes(4).toString("hex")}/`;
    });

    afterAll(async () => {
      if (!store) return;
      // Best effort: a locked version stays until its lock ends (test stores are throwaway).
      for (const o of await store.list(root).catch(() => [])) {
        for (const v of await store.versions(o.key).catch(() => [])) await store.delete(v.key, { version: v.version }).catch(() => undefined);
        await store.delete(o.key).catch(() => undefined);
      }
      for (const u of await store.listIncompleteUploads(root).catch(() => [])) await store.abortUploads(u.key).catch(() => undefined);
      await sut.stop();
    });

    it("declares the capabilities the store really has", () => {
      expect(store.capabilities).toEqual({ versions: opts.versions, lock: opts.lock, legalHold: opts.legalHold, presign: opts.presign });
      expect(store.prefix === "" || store.prefix.endsWith("/")).toBe(true);
    });

    describe("containers and URLs", () => {
      it("checkContainer accepts the existing container and refuses a missing one with a ConfigError naming the field and the container", async () => {
        const note = await store.checkContainer();
        expect(note === undefined || typeof note === "string").toBe(true);

        const missingName = opts.missingContainer ?? `vrb-missing-${randomBytes(6).toString("hex")}`;
        const missing = store.withContainer(missingName);
        expect(missing.container).toBe(missingName);
        const err = await rejectionOf(missing.checkContainer());
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).field).toBe(opts.containerField);
        expect((err as ConfigError).message).toContain(missingName);
        expectNoSecret((err as ConfigError).message);

        const named = await rejectionOf(missing.checkContainer({ field: "copies[1].destination" }));
        expect(named).toBeInstanceOf(ConfigError);
        expect((named as ConfigError).field).toBe("copies[1].destination");
      });

      it("a write to a missing container fails with a message naming the object's URL and no credential", async () => {
        const missing = store.withContainer(opts.missingContainer ?? `vrb-missing-${randomBytes(6).toString("hex")}`);
        const key = `${root}missing/x.json`;
        const err = await rejectionOf(missing.writeText(key, "{}"));
        expect(err).toBeInstanceOf(VrbError);
        expect((err as Error).message).toContain(missing.url(key));
        expectNoSecret((err as Error).message);
        expectNoSecret(store.describeError(err));
      });

      it("url and parseUrl round-trip a key; another scheme is not this store's", () => {
        const key = `${root}prod/2026/01/02/snap-1.snap`;
        const url = store.url(key);
        expect(store.parseUrl(url)).toEqual({ container: store.container, key });
        expect(url.endsWith(key)).toBe(true);
        expect(store.url().length).toBeGreaterThan(0);
        expect(url.startsWith(store.url())).toBe(true);
        expect(store.parseUrl("https://example.invalid/a/b")).toBeUndefined();
        expect(store.withContainer(store.container).url(key)).toBe(url);
      });
    });

    describe("small objects", () => {
      it("head and readText of a missing object are undefined; openRead of one fails naming its URL", async () => {
        const key = `${root}small/nothing-here.json`;
        expect(await store.head(key)).toBeUndefined();
        expect(await store.readText(key)).toBeUndefined();
        const err = await rejectionOf(store.openRead(key));
        expect(err).toBeInstanceOf(VrbError);
        expect((err as Error).message).toContain(store.url(key));
      });

      it("writeText then readText and head return the text, its size, its date and one etag", async () => {
        const key = `${root}small/status.json`;
        const text = JSON.stringify({ cluster: "prod", ok: true, note: "naïve ünïcode" });
        const written = await store.writeText(key, text, { contentType: "application/json" });
        expect(written.key).toBe(key);
        const read = await store.readText(key);
        expect(read?.text).toBe(text);
        const head = await store.head(key);
        expect(head?.key).toBe(key);
        expect(head?.bytes).toBe(Buffer.byteLength(text));
        expect(head?.modified).toBeInstanceOf(Date);
        expect(head?.etag).toBeDefined();
        expect(read?.etag).toBe(head?.etag);
      });

      it("writeText ifAbsent writes once; the second write is a StoreConflictError and changes nothing", async () => {
        const key = `${root}small/lease.json`;
        await store.writeText(key, "first", { ifAbsent: true });
        const err = await rejectionOf(store.writeText(key, "second", { ifAbsent: true }));
        expect(err).toBeInstanceOf(StoreConflictError);
        expect((await store.readText(key))?.text).toBe("first");
      });

      it("of concurrent ifAbsent writes exactly one wins; the others are StoreConflictErrors", async () => {
        const key = `${root}small/race-absent.json`;
        const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.writeText(key, `writer-${i}`, { ifAbsent: true })));
        const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(StoreConflictError);
        expect((await store.readText(key))?.text).toBe(`writer-${won[0]}`);
      });

      it("writeText ifMatch succeeds with the current etag and is a StoreConflictError with a stale one", async () => {
        const key = `${root}small/record.json`;
        const v1 = await store.writeText(key, "v1");
        const read1 = await store.readText(key);
        const v2 = await store.writeText(key, "v2", { ifMatch: read1!.etag! });
        expect(v2.etag).toBeDefined();
        expect(v2.etag).not.toBe(read1!.etag);
        // The etag a write returns is as good as one read back.
        await store.writeText(key, "v3", { ifMatch: v2.etag! });
        const stale = await rejectionOf(store.writeText(key, "lost", { ifMatch: read1!.etag! }));
        expect(stale).toBeInstanceOf(StoreConflictError);
        expect((await store.readText(key))?.text).toBe("v3");
        expect(v1.key).toBe(key);
      });

      it("of concurrent ifMatch writes with one etag exactly one wins", async () => {
        const key = `${root}small/race-match.json`;
        await store.writeText(key, "base");
        const etag = (await store.readText(key))!.etag!;
        const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.writeText(key, `writer-${i}`, { ifMatch: etag })));
        const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(StoreConflictError);
        expect((await store.readText(key))?.text).toBe(`writer-${won[0]}`);
      });

      it("writeText ifMatch on an object deleted since it was read is a StoreConflictError", async () => {
        const key = `${root}small/gone.json`;
        await store.writeText(key, "here");
        const etag = (await store.readText(key))!.etag!;
        await store.delete(key);
        expect(await rejectionOf(store.writeText(key, "again", { ifMatch: etag }))).toBeInstanceOf(StoreConflictError);
        expect(await store.head(key)).toBeUndefined();
      });
    });

    describe("listings", () => {
      it("list returns every object under the prefix in key order, and nothing from a sibling prefix", async () => {
        const base = `${root}list/`;
        const names = ["c.json", "a.json", "b/deep/x.snap", "b/y.snap", "a0.json"];
        for (const n of names) await store.writeText(`${base}in/${n}`, n);
        await store.writeText(`${base}in-sibling/a.json`, "no");
        await store.writeText(`${base}inside.json`, "no");
        const listed = await store.list(`${base}in/`);
        expect(listed.map((o) => o.key)).toEqual(names.map((n) => `${base}in/${n}`).sort());
        for (const o of listed) expect(o.bytes).toBe(Buffer.byteLength(o.key.slice(`${base}in/`.length)));
        expect(await store.list(`${base}nothing/`)).toEqual([]);
      });

      it("listFolders returns the folders directly under the prefix, each a full prefix ending in '/'", async () => {
        const base = `${root}folders/`;
        for (const k of ["prod/2026/a.snap", "prod/b.snap", "staging/2026/01/c.snap", "top.json"]) await store.writeText(`${base}${k}`, "x");
        expect((await store.listFolders(base)).sort()).toEqual([`${base}prod/`, `${base}staging/`]);
        expect(await store.listFolders(`${base}prod/2026/`)).toEqual([]);
        expect(await store.listFolders(`${base}none/`)).toEqual([]);
      });

      if (opts.listPageSize) {
        const pageSize = opts.listPageSize;
        it(`list follows every page (${pageSize + 1} objects, more than one page)`, async () => {
          const base = `${root}pages/`;
          const keys = Array.from({ length: pageSize + 1 }, (_, i) => `${base}${String(i).padStart(5, "0")}.json`);
          for (let at = 0; at < keys.length; at += 25) await Promise.all(keys.slice(at, at + 25).map((k) => store.writeText(k, "{}")));
          expect((await store.list(base)).map((o) => o.key)).toEqual(keys);
        });
      }
    });

    describe("streamed uploads and reads", () => {
      it("a payload of several parts plus a tail uploads whole: result, head, bytes and SHA-256 read back", async () => {
        const key = `${root}upload/multi.snap`;
        const data = randomBytes(3 * partSize + 123_457);
        const acknowledged: number[] = [];
        let visibleBeforeComplete: boolean | undefined;
        const up = upload({
          // The backup learns its key late, from the stream's first KiB.
          key: new Promise<string>((resolve) => setImmediate(() => resolve(key))),
          contentType: "application/octet-stream",
          onUploaded: (n) => acknowledged.push(n),
          beforeComplete: async () => {
            visibleBeforeComplete = (await store.head(key)) !== undefined || (await store.list(`${root}upload/`)).some((o) => o.key === key);
          },
        });
        await pipeline(chunked(data), up);
        expect(visibleBeforeComplete).toBe(false);
        expect(up.result?.key).toBe(key);
        expect(up.result?.etag ?? up.result?.version).toBeDefined();
        expect(up.bytes).toBe(data.length);
        expect(up.uploaded).toBe(data.length);
        expect(acknowledged.reduce((a, b) => a + b, 0)).toBe(data.length);
        expect(up.storeError).toBeUndefined();
        expect((await store.head(key))?.bytes).toBe(data.length);
        const read = await store.openRead(key);
        expect(read.bytes).toBe(data.length);
        expect(sha256(await readAll(read.body))).toBe(sha256(data));
        expect(await store.listIncompleteUploads(`${root}upload/multi`)).toEqual([]);
      });

      if (opts.growingParts) {
        it("the part size doubles every partsPerSize parts, so a stream of unknown size fits the store's limit on parts; the object reads back whole", async () => {
          const key = `${root}upload/growing.snap`;
          const data = randomBytes(4 * partSize + 12_345);
          const acknowledged: number[] = [];
          const up = upload({ key, partsPerSize: 2, onUploaded: (n) => acknowledged.push(n) });
          await pipeline(chunked(data), up);
          // Two parts of the configured size, one of twice it, then the rest.
          expect(acknowledged.sort((a, b) => a - b)).toEqual([12_345, partSize, partSize, 2 * partSize]);
          const read = await store.openRead(key);
          expect(read.bytes).toBe(data.length);
          expect(sha256(await readAll(read.body))).toBe(sha256(data));
        });
      }

      it("a payload under one part uploads whole", async () => {
        const key = `${root}upload/small.snap`;
        const data = randomBytes(70_001);
        const up = upload({ key });
        await pipeline(chunked(data, 16_384), up);
        expect(up.result?.key).toBe(key);
        const read = await store.openRead(key);
        expect(read.bytes).toBe(data.length);
        expect(sha256(await readAll(read.body))).toBe(sha256(data));
      });

      it("an upload whose beforeComplete rejects fails with that error and makes nothing visible; aborting its own uploads leaves none", async () => {
        const key = `${root}upload/refused.snap`;
        const up = upload({
          key,
          beforeComplete: async () => {
            throw new Error("refused by the test: the archive's checksums do not match");
          },
        });
        await expect(pipeline(chunked(randomBytes(2 * partSize + 1000)), up)).rejects.toThrow("refused by the test");
        expect(up.result).toBeUndefined();
        expect(await store.head(key)).toBeUndefined();
        expect((await store.list(`${root}upload/`)).map((o) => o.key)).not.toContain(key);
        const aborted = await store.abortUploads(key, { own: up.ownUploads(), deadlineMs: 30_000 });
        expect(aborted.left).toEqual([]);
        expect((await store.listIncompleteUploads(`${root}upload/`)).filter((u) => u.key === key)).toEqual([]);
        expect(await store.head(key)).toBeUndefined();
      });

      it("a destroyed upload (the source failed) makes nothing visible; aborting its own uploads leaves none", async () => {
        const key = `${root}upload/destroyed.snap`;
        const acked = signal();
        const up = upload({ key, onUploaded: () => acked.fire() });
        up.on("error", () => undefined);
        // Two parts' worth, then the source fails once the store has taken some of it.
        const written = new Promise<void>((resolve, reject) => up.write(randomBytes(2 * partSize + 1000), (err) => (err ? reject(err) : resolve())));
        await Promise.race([acked.promise, written]);
        up.destroy(new Error("the snapshot stream failed"));
        await finished(up).catch(() => undefined);
        expect(up.result).toBeUndefined();
        expect(await store.head(key)).toBeUndefined();
        expect((await store.list(`${root}upload/`)).map((o) => o.key)).not.toContain(key);
        const aborted = await store.abortUploads(key, { own: up.ownUploads(), deadlineMs: 30_000 });
        expect(aborted.left).toEqual([]);
        expect((await store.listIncompleteUploads(`${root}upload/`)).filter((u) => u.key === key)).toEqual([]);
      });

      it("aborting a failed run's own uploads leaves another run's upload of the same key alive", async () => {
        const key = `${root}upload/shared.snap`;
        const otherData = randomBytes(partSize + 5000);
        // The store holds the other run's upload once it acknowledged bytes of it.
        const otherStarted = signal();
        const other = upload({ key, onUploaded: () => otherStarted.fire() });
        const otherDone = finished(other);
        other.write(otherData.subarray(0, partSize + 1));
        await otherStarted.promise;
        expect(other.ownUploads().ids.length).toBeGreaterThan(0);

        const failed = upload({
          key,
          beforeComplete: async () => {
            throw new Error("refused by the test");
          },
        });
        await expect(pipeline(chunked(randomBytes(partSize + 10)), failed)).rejects.toThrow("refused by the test");
        await store.abortUploads(key, { own: failed.ownUploads(), deadlineMs: 30_000 });
        const left = (await store.listIncompleteUploads(`${root}upload/`)).filter((u) => u.key === key).map((u) => u.id);
        for (const id of other.ownUploads().ids) expect(left).toContain(id);
        for (const id of failed.ownUploads().ids) expect(left).not.toContain(id);

        other.end(otherData.subarray(partSize + 1));
        await otherDone;
        expect(await store.head(key)).toMatchObject({ bytes: otherData.length });
        const read = await store.openRead(key);
        expect(sha256(await readAll(read.body))).toBe(sha256(otherData));
      });
    });

    describe("versions and deletes", () => {
      it(opts.versions ? "versions lists every version; deleting each removes the object" : "versions lists the one object; delete removes it", async () => {
        const key = `${root}versions/manifest.json`;
        const first = await store.writeText(key, "one");
        await store.writeText(key, "two!");
        const versions = await store.versions(key);
        if (opts.versions) {
          expect(versions.length).toBeGreaterThanOrEqual(2);
          expect(new Set(versions.map((v) => v.version)).size).toBe(versions.length);
          expect(first.version).toBeDefined();
          expect((await store.head(key, { version: first.version }))?.bytes).toBe(3);
          await store.delete(key, { version: first.version });
          expect((await store.versions(key)).map((v) => v.version)).not.toContain(first.version);
        } else {
          expect(versions).toHaveLength(1);
          expect(versions[0]?.key).toBe(key);
          expect(versions[0]?.version).toBeUndefined();
        }
        await store.delete(key);
        expect(await store.head(key)).toBeUndefined();
        expect(await store.readText(key)).toBeUndefined();
        for (const v of await store.versions(key)) await store.delete(v.key, { version: v.version });
        expect(await store.versions(key)).toEqual([]);
      });

      it("deleting a missing object is not an error", async () => {
        await store.delete(`${root}versions/never-written.json`);
      });
    });

    describe("immutability and pre-signed URLs", () => {
      if (opts.lock) {
        it("lock holds a version until the date: its delete is a StoreLockedError", async () => {
          const key = `${root}locks/locked.snap`;
          const obj = await store.writeText(key, "locked");
          const until = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2 * 86_400_000);
          await store.lock(obj, "GOVERNANCE", until);
          const head = await store.head(key, { version: obj.version });
          expect(head?.lock?.until?.getTime()).toBe(until.getTime());
          expect(await rejectionOf(store.delete(key, { version: obj.version }))).toBeInstanceOf(StoreLockedError);
        });
      } else {
        it("lock is a StoreCapabilityError", async () => {
          const obj = await store.writeText(`${root}locks/plain.snap`, "x");
          expect(await rejectionOf(store.lock(obj, "GOVERNANCE", new Date(Date.now() + 86_400_000)))).toBeInstanceOf(StoreCapabilityError);
        });
      }

      if (opts.legalHold) {
        it("a legal hold refuses the delete until it is cleared", async () => {
          const key = `${root}locks/held.snap`;
          const obj = await store.writeText(key, "held");
          await store.setLegalHold(obj, true);
          expect((await store.head(key, { version: obj.version }))?.lock?.legalHold).toBe(true);
          expect(await rejectionOf(store.delete(key, { version: obj.version }))).toBeInstanceOf(StoreLockedError);
          await store.setLegalHold(obj, false);
          expect((await store.head(key, { version: obj.version }))?.lock?.legalHold ?? false).toBe(false);
          await store.delete(key, { version: obj.version });
        });
      } else {
        it("setLegalHold is a StoreCapabilityError", async () => {
          const obj = await store.writeText(`${root}locks/plain-hold.snap`, "x");
          expect(await rejectionOf(store.setLegalHold(obj, true))).toBeInstanceOf(StoreCapabilityError);
        });
      }

      if (opts.presign) {
        it("a pre-signed URL reads the object's bytes without credentials", async () => {
          const key = `${root}presign/hand-over.snap`;
          const data = randomBytes(300_000);
          await pipeline(chunked(data), upload({ key }));
          const url = await store.presign(key, 600);
          expectNoSecret(url);
          const res = await request(url);
          expect(res.statusCode).toBe(200);
          expect(sha256(Buffer.from(await res.body.arrayBuffer()))).toBe(sha256(data));
        });
      } else {
        it("presign is a StoreCapabilityError", async () => {
          expect(await rejectionOf(store.presign(`${root}presign/x.snap`, 600))).toBeInstanceOf(StoreCapabilityError);
        });
      }
    });
  });
}
