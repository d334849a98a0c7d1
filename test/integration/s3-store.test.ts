// The S3 store behind the storage seam (engine/storage/s3/), against the shared real S3 server's
// versioned, object-locked bucket: what every caller of ObjectStore relies on, as S3 does it.
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, StoreConflictError, StoreLockedError } from "../../engine/index.js";
import { s3For, s3StoreOn, sharedEnv } from "../support/env.js";

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("the S3 store (real S3 server)", () => {
  const env = sharedEnv();
  const s3 = s3For(env);
  const prefix = `s3-store-${Date.now()}/`;
  const store = s3StoreOn(s3, env.bucket!, prefix);
  afterAll(() => s3.destroy());

  it("writes only if absent, or only if unchanged since read: a lost race is StoreConflictError and changes nothing", async () => {
    const key = `${prefix}c/vrb-status.json`;
    await store.writeText(key, "one", { ifAbsent: true, contentType: "application/json" });
    await expect(store.writeText(key, "two", { ifAbsent: true })).rejects.toBeInstanceOf(StoreConflictError);
    const read = await store.readText(key);
    expect(read?.text).toBe("one");
    await store.writeText(key, "three", { ifMatch: read!.etag });
    await expect(store.writeText(key, "four", { ifMatch: read!.etag })).rejects.toBeInstanceOf(StoreConflictError);
    expect((await store.readText(key))?.text).toBe("three");
    // Versioned bucket: both writes are kept as versions of the key.
    expect(await store.versions(key)).toHaveLength(2);
  });

  it("streams a multipart upload that reads back whole, and a locked version refuses deletion with StoreLockedError", async () => {
    const data = randomBytes(11 * MiB);
    const key = `${prefix}big.snap`;
    const upload = store.createUpload({ key, partSize: 5 * MiB, queueSize: 2, contentType: "application/gzip" });
    await pipeline(Readable.from([data.subarray(0, 4 * MiB), data.subarray(4 * MiB)]), upload);
    expect(upload.bytes).toBe(data.length);
    expect(upload.uploaded).toBe(data.length);
    expect(upload.result?.key).toBe(key);

    const read = await store.openRead(key);
    expect(read.bytes).toBe(data.length);
    expect(sha256(await readAll(read.body))).toBe(sha256(data));

    const until = new Date(Date.now() + 86_400_000);
    await store.lock(upload.result!, "GOVERNANCE", until);
    const head = await store.head(key, { version: upload.result!.version });
    expect(head).toMatchObject({ key, bytes: data.length, lock: { mode: "GOVERNANCE" } });
    expect(head!.lock!.until!.getTime()).toBeGreaterThan(until.getTime() - 1_000);
    await expect(store.delete(key, { version: upload.result!.version })).rejects.toBeInstanceOf(StoreLockedError);
    expect((await store.head(key))?.bytes).toBe(data.length);
  });

  it("an upload whose gate fails makes no object; it is listed as incomplete until abortUploads removes it", async () => {
    const key = `${prefix}refused.snap`;
    // The gate fails once the first part is stored, so the multipart upload surely exists by then.
    let firstPartStored!: () => void;
    const stored = new Promise<void>((resolve) => (firstPartStored = resolve));
    const upload = store.createUpload({
      key,
      partSize: 5 * MiB,
      queueSize: 1,
      onUploaded: () => firstPartStored(),
      beforeComplete: async () => {
        await stored;
        throw new Error("archive check failed");
      },
    });
    await expect(pipeline(Readable.from([randomBytes(7 * MiB)]), upload)).rejects.toThrow("archive check failed");
    expect(await store.head(key)).toBeUndefined();
    expect((await store.listIncompleteUploads(prefix)).map((u) => u.key)).toContain(key);
    const own = upload.ownUploads();
    expect(own.ids).toHaveLength(1);
    expect(await store.abortUploads(key, { own, deadlineMs: 20_000 })).toMatchObject({ aborted: own.ids, left: [] });
    expect((await store.listIncompleteUploads(prefix)).map((u) => u.key)).not.toContain(key);
  });

  it("lists objects in key order (with a limit) and the folders under a prefix; a missing object is undefined, or an error naming its URL", async () => {
    const base = `${prefix}tree/`;
    for (const k of ["b/1", "a/2", "a/1"]) await store.writeText(`${base}${k}`, k);
    expect((await store.list(base)).map((o) => o.key)).toEqual([`${base}a/1`, `${base}a/2`, `${base}b/1`]);
    expect(await store.list(base, { limit: 1 })).toHaveLength(1);
    expect(await store.listFolders(base)).toEqual([`${base}a/`, `${base}b/`]);

    const missing = `${base}nothing.snap`;
    expect(await store.head(missing)).toBeUndefined();
    expect(await store.readText(missing)).toBeUndefined();
    await expect(store.openRead(missing)).rejects.toThrow(`${store.url(missing)} does not exist`);
  });

  it("a pre-signed URL reads the object without credentials", async () => {
    const key = `${prefix}shared.json`;
    await store.writeText(key, '{"shared":true}');
    const res = await fetch(await store.presign(key, 60));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"shared":true}');
  });

  it("checkContainer refuses a bucket that does not exist with ConfigError naming the field, and passes one that does", async () => {
    expect(await store.checkContainer()).toBeUndefined();
    const err = await s3StoreOn(s3, `missing-${Date.now()}`)
      .checkContainer({ field: "copies[0].bucket" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: "copies[0].bucket", stage: "destination" });
  });

  it("names its objects by URL and parses its own URLs back", () => {
    expect(store.url(`${prefix}x.snap`)).toBe(`s3://${env.bucket}/${prefix}x.snap`);
    expect(store.parseUrl(`s3://other/${prefix}x.snap`)).toEqual({ container: "other", key: `${prefix}x.snap` });
    expect(store.parseUrl(`gs://other/x.snap`)).toBeUndefined();
    expect(store.withContainer("other").url("k")).toBe("s3://other/k");
  });
});
