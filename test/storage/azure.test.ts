import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import { BlobServiceClient } from "@azure/storage-blob";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, OperationError } from "../../engine/errors.js";
import { startAzurite, stopAzurite, type LocalAzurite } from "../../devenv/azurite.js";
import { redact } from "../../engine/redact.js";
import { connectAzure } from "../../engine/storage/azure/connect.js";
import { AzureBlobStore } from "../../engine/storage/azure/store.js";
import type { AzureDestination } from "../../engine/storage/destination.js";
import type { ObjectStore } from "../../engine/storage/object-store.js";
import { openStore } from "../../engine/storage/registry.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { tempDir } from "../support/env.js";
import { describeStoreContract } from "./contract.js";
import { readAll, rejectionOf, sha256 } from "./support.js";

/**
 * The Azure Blob store on a real Azurite (Microsoft's emulator, started on 127.0.0.1 for this file):
 * the shared ObjectStore contract on a fresh container, then what is Azure's own: credentials from
 * the environment, the block upload's tombstoned abort, resumed reads pinned to the ETag, retried
 * blocks, the encryption scope on every write, and SAS URLs. What Azurite does not emulate
 * (versions, immutability, identity sign-in) is listed in docs/storage-azure.md.
 */
const KiB = 1024;
let az: LocalAzurite;
let service: BlobServiceClient;
const container = `vrb-${randomBytes(4).toString("hex")}`;

function destination(extra: Partial<AzureDestination> = {}): AzureDestination {
  return { type: "azure", accountName: az.accountName, container, prefix: "vrb/", ...extra };
}

/** A store on the test's Azurite, signed with its connection string, optionally at another endpoint (a fault proxy). */
function storeAt(extra: Partial<AzureDestination> = {}, pageSize?: number): AzureBlobStore {
  const d = destination(extra);
  return new AzureBlobStore(connectAzure(d, { AZURE_STORAGE_CONNECTION_STRING: az.connectionString }), {
    name: "primary",
    accountName: d.accountName,
    container: d.container,
    prefix: d.prefix,
    encryptionScope: d.encryptionScope,
    pageSize,
  });
}

async function startProxy(): Promise<FaultProxy> {
  return new FaultProxy(new URL(az.endpoint).origin).start();
}

/** The proxy's endpoint for the same account (Azurite takes the account from the path). */
function through(proxy: FaultProxy): string {
  return `${proxy.url}/${az.accountName}`;
}

const isBlockPut = (req: IncomingMessage, url: URL) => req.method === "PUT" && url.searchParams.get("comp") === "block";

beforeAll(async () => {
  az = await startAzurite(tempDir("azurite"));
  service = BlobServiceClient.fromConnectionString(az.connectionString);
  await service.getContainerClient(container).create();
});

afterAll(async () => {
  if (az) await stopAzurite(az);
});

describeStoreContract(
  "Azure Blob (Azurite)",
  async () => ({
    // Pages of 100 so the listing test crosses pages with 101 blobs (Azure's own pages hold 5000).
    store: storeAt({}, 100),
    stop: async () => undefined,
  }),
  {
    // Azurite keeps no blob versions and answers every immutability call with 501.
    versions: false,
    lock: false,
    legalHold: false,
    presign: true,
    containerField: "destination.container",
    listPageSize: 100,
    partSize: 256 * KiB,
    growingParts: true,
    get secrets() {
      return [az.accountKey, az.connectionString];
    },
  },
);

describe("Azure Blob store: what is Azure's own", () => {
  let store: AzureBlobStore;
  const root = `vrb/azure-${randomBytes(4).toString("hex")}/`;

  beforeAll(() => {
    store = storeAt();
  });

  it("a policy destination of type azure opens this store through the registry, with AZURE_STORAGE_CONNECTION_STRING", async () => {
    const saved = { cs: process.env.AZURE_STORAGE_CONNECTION_STRING, key: process.env.AZURE_STORAGE_KEY };
    process.env.AZURE_STORAGE_CONNECTION_STRING = az.connectionString;
    delete process.env.AZURE_STORAGE_KEY;
    let opened: ObjectStore;
    try {
      opened = await openStore(destination(), { name: "offsite" });
    } finally {
      if (saved.cs === undefined) delete process.env.AZURE_STORAGE_CONNECTION_STRING;
      else process.env.AZURE_STORAGE_CONNECTION_STRING = saved.cs;
      if (saved.key !== undefined) process.env.AZURE_STORAGE_KEY = saved.key;
    }
    expect(opened.type).toBe("azure");
    expect(opened.name).toBe("offsite");
    expect(opened.container).toBe(container);
    expect(await opened.checkContainer()).toBeUndefined();
    const key = `${root}registry/hello.json`;
    await opened.writeText(key, '{"hello":1}');
    expect((await opened.readText(key))?.text).toBe('{"hello":1}');
    expect(opened.url(key)).toBe(`azure://${az.accountName}/${container}/${key}`);
    expect(opened.parseUrl(`azure://${az.accountName}/other-container/a/b.snap`)).toEqual({ container: "other-container", key: "a/b.snap" });
    // Another account's blob is not reachable with this account's credentials.
    expect(opened.parseUrl(`azure://someoneelse/${container}/a/b.snap`)).toBeUndefined();
  });

  it("an account key (AZURE_STORAGE_KEY) with the destination's endpoint signs requests; a wrong key is refused naming the URL and code, never the key", async () => {
    const good = new AzureBlobStore(connectAzure(destination({ endpoint: az.endpoint }), { AZURE_STORAGE_KEY: az.accountKey }), {
      name: "primary",
      accountName: az.accountName,
      container,
      prefix: "vrb/",
    });
    const key = `${root}keys/with-key.json`;
    await good.writeText(key, "signed with the account key");
    expect((await good.readText(key))?.text).toBe("signed with the account key");

    const wrongKey = randomBytes(64).toString("base64");
    const bad = new AzureBlobStore(connectAzure(destination({ endpoint: az.endpoint }), { AZURE_STORAGE_KEY: wrongKey }), {
      name: "primary",
      accountName: az.accountName,
      container,
      prefix: "vrb/",
    });
    const err = await rejectionOf(bad.writeText(`${root}keys/refused.json`, "x"));
    expect(err).toBeInstanceOf(OperationError);
    const message = (err as Error).message;
    expect(message).toContain(bad.url(`${root}keys/refused.json`));
    expect(message).toMatch(/AuthorizationFailure|AuthenticationFailed|HTTP 403/);
    expect(message).not.toContain(wrongKey);
    expect(redact(`key ${wrongKey}`)).not.toContain(wrongKey);
  });

  it("a connection string of another account is refused before any request, naming destination.accountName", () => {
    const err = (() => {
      try {
        connectAzure(destination({ accountName: "otheraccount" }), { AZURE_STORAGE_CONNECTION_STRING: az.connectionString });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("destination.accountName");
    expect((err as ConfigError).message).toContain("otheraccount");
    expect((err as ConfigError).message).not.toContain(az.accountKey);
  });

  it("a refused upload commits nothing; its abort empties its blocks (1-byte tombstones under the same ids) and leaves another upload's blocks whole", async () => {
    const key = `${root}abort/refused.snap`;
    const partSize = 64 * KiB;
    // Another run's upload of the same key, mid-way: one block staged.
    const otherData = randomBytes(partSize + 100);
    let otherStaged!: () => void;
    const otherHasABlock = new Promise<void>((resolve) => (otherStaged = resolve));
    const other = store.createUpload({ key, partSize, queueSize: 1, onUploaded: () => otherStaged() });
    const otherDone = finished(other);
    other.write(otherData.subarray(0, partSize + 1));
    await otherHasABlock;

    // This run's upload: three blocks staged, then its archive check fails.
    let allStaged!: () => void;
    let acknowledged = 0;
    const threeBlocks = new Promise<void>((resolve) => (allStaged = resolve));
    const up = store.createUpload({
      key,
      partSize,
      queueSize: 2,
      onUploaded: (n) => (acknowledged += n) === 3 * partSize && allStaged(),
      beforeComplete: async () => {
        await threeBlocks;
        throw new Error("archive check failed");
      },
    });
    await expect(pipeline(Readable.from([randomBytes(3 * partSize + 10)]), up)).rejects.toThrow("archive check failed");
    const blob = service.getContainerClient(container).getBlockBlobClient(key);
    expect(await blob.exists()).toBe(false);
    const [own] = up.ownUploads().ids;
    expect(own).toMatch(/^[0-9a-f]{12}$/);
    expect((await store.listIncompleteUploads(`${root}abort/`)).map((u) => u.id).sort()).toEqual([own, other.ownUploads().ids[0]].sort());

    const aborted = await store.abortUploads(key, { own: up.ownUploads(), deadlineMs: 30_000 });
    expect(aborted).toEqual({ aborted: [own], left: [] });
    const blocks = (await blob.getBlockList("uncommitted")).uncommittedBlocks ?? [];
    const ownIds = new Set([1, 2, 3].map((part) => Buffer.from(`vrb${own}${String(part).padStart(6, "0")}`).toString("base64")));
    expect(blocks.filter((b) => ownIds.has(b.name)).map((b) => b.size)).toEqual([1, 1, 1]);
    expect(blocks.filter((b) => !ownIds.has(b.name)).map((b) => b.size)).toEqual([partSize]);
    expect(await blob.exists()).toBe(false);
    expect((await store.listIncompleteUploads(`${root}abort/`)).map((u) => u.id)).toEqual(other.ownUploads().ids);

    // The other upload still completes with exactly its bytes.
    other.end(otherData.subarray(partSize + 1));
    await otherDone;
    expect(sha256(await readAll((await store.openRead(key)).body))).toBe(sha256(otherData));
    expect(await store.listIncompleteUploads(`${root}abort/`)).toEqual([]);
  });

  it("a read cut part-way resumes where it stopped and yields the whole blob once", async () => {
    const key = `${root}read/cut.snap`;
    const data = randomBytes(900 * KiB);
    await pipeline(Readable.from([data]), store.createUpload({ key, partSize: 256 * KiB, queueSize: 2 }));
    const proxy = await startProxy();
    try {
      proxy.rules = [{ match: (req) => req.method === "GET", share: 1, limit: 1, fault: { kind: "cut", afterBytes: 300 * KiB } }];
      const resumes: string[] = [];
      const read = await storeAt({ endpoint: through(proxy) }).openRead(key, { onResume: (m) => resumes.push(m) });
      expect(read.bytes).toBe(data.length);
      expect(sha256(await readAll(read.body))).toBe(sha256(data));
      expect(proxy.stats.injected.cut).toBe(1);
      expect(resumes).toHaveLength(1);
      expect(resumes[0]).toContain(store.url(key));
    } finally {
      await proxy.stop();
    }
  });

  it("a resume after the blob was overwritten fails naming the URL instead of splicing two blobs", async () => {
    const key = `${root}read/changed.snap`;
    const first = randomBytes(600 * KiB);
    await pipeline(Readable.from([first]), store.createUpload({ key, partSize: 256 * KiB, queueSize: 2 }));
    const proxy = await startProxy();
    try {
      proxy.rules = [{ match: (req) => req.method === "GET", share: 1, limit: 1, fault: { kind: "cut", afterBytes: 200 * KiB } }];
      const read = await storeAt({ endpoint: through(proxy) }).openRead(key);
      const it = read.body[Symbol.asyncIterator]();
      const firstChunk = await it.next();
      expect(firstChunk.done).toBe(false);
      // The resume is asked for only when the reader gets past the cut: the blob changes first.
      await store.writeText(key, "a different blob now");
      const err = await rejectionOf(
        (async () => {
          for (let r = await it.next(); !r.done; r = await it.next());
        })(),
      );
      expect((err as Error).message).toContain(store.url(key));
      expect((err as Error).message).toMatch(/ConditionNotMet|HTTP 412/);
    } finally {
      await proxy.stop();
    }
  });

  it("blocks refused with a retryable answer are sent again; one refused for good fails the upload naming the URL and code, and nothing appears", async () => {
    const proxy = await startProxy();
    try {
      const through_ = storeAt({ endpoint: through(proxy) });
      const data = randomBytes(5 * 64 * KiB + 7);
      proxy.rules = [{ match: isBlockPut, share: 1, limit: 3, fault: { kind: "s3-error", status: 429, code: "TooManyRequests" } }];
      const retries: string[] = [];
      const key = `${root}retry/throttled.snap`;
      const up = through_.createUpload({ key, partSize: 64 * KiB, queueSize: 2, onPartRetry: (m) => retries.push(m) });
      await pipeline(Readable.from([data]), up);
      expect(proxy.stats.injected.TooManyRequests).toBe(3);
      expect(up.partRetries).toBe(3);
      expect(retries[0]).toContain("TooManyRequests");
      expect(sha256(await readAll((await store.openRead(key)).body))).toBe(sha256(data));

      proxy.rules = [{ match: isBlockPut, share: 1, fault: { kind: "s3-error", status: 400, code: "InvalidBlobOrBlock" } }];
      const refusedKey = `${root}retry/refused.snap`;
      const refused = through_.createUpload({ key: refusedKey, partSize: 64 * KiB, queueSize: 2 });
      await expect(pipeline(Readable.from([data]), refused)).rejects.toThrow(/InvalidBlobOrBlock/);
      expect(refused.storeError).toBeInstanceOf(OperationError);
      expect((refused.storeError as Error).message).toContain(store.url(refusedKey));
      expect(await store.head(refusedKey)).toBeUndefined();
    } finally {
      await proxy.stop();
    }
  });

  it("a slow store holds the writer back: never more than (queueSize + 1) parts accepted and not yet acknowledged", async () => {
    const proxy = await startProxy();
    try {
      // 1 MiB/s for the blocks: a writer that did not wait would have the whole 2 MiB in memory at once.
      proxy.rules = [{ match: isBlockPut, share: 1, fault: { kind: "throttle", bytesPerSec: 1024 * KiB } }];
      const partSize = 64 * KiB;
      const queueSize = 2;
      const data = randomBytes(2048 * KiB);
      const up = storeAt({ endpoint: through(proxy) }).createUpload({ key: `${root}memory/slow.snap`, partSize, queueSize });
      let held = 0;
      let waited = false;
      async function* source(): AsyncGenerator<Buffer> {
        for (let at = 0; at < data.length; at += 16 * KiB) {
          held = Math.max(held, up.bytes - up.uploaded);
          waited ||= up.waitingForStore;
          yield data.subarray(at, at + 16 * KiB);
        }
      }
      await pipeline(Readable.from(source()), up);
      expect(waited).toBe(true);
      expect(held).toBeGreaterThan(partSize);
      expect(held).toBeLessThanOrEqual((queueSize + 1) * partSize);
      expect(sha256(await readAll((await store.openRead(`${root}memory/slow.snap`)).body))).toBe(sha256(data));
    } finally {
      await proxy.stop();
    }
  });

  it("the encryption scope goes with every write: Put Blob, each block and the block list", async () => {
    const proxy = await startProxy();
    const scopes: string[] = [];
    try {
      proxy.rules = [
        {
          match: (req) => {
            if (req.method === "PUT") scopes.push(String(req.headers["x-ms-encryption-scope"]));
            return false;
          },
          share: 0,
          fault: { kind: "drop" },
        },
      ];
      const scoped = storeAt({ endpoint: through(proxy), encryptionScope: "vault-backups" });
      await scoped.writeText(`${root}scope/status.json`, "{}");
      await pipeline(Readable.from([randomBytes(3 * 64 * KiB)]), scoped.createUpload({ key: `${root}scope/big.snap`, partSize: 64 * KiB, queueSize: 2 }));
      await pipeline(Readable.from([randomBytes(10)]), scoped.createUpload({ key: `${root}scope/small.snap`, partSize: 64 * KiB, queueSize: 2 }));
      // writeText, 3 blocks, 1 block list, 1 single Put Blob.
      expect(scopes).toEqual(Array(6).fill("vault-backups"));
    } finally {
      await proxy.stop();
    }
  });

  it("a SAS URL reads the blob without credentials; with its signature changed it is refused", async () => {
    const key = `${root}sas/hand-over.snap`;
    await store.writeText(key, "handed over");
    const url = await store.presign(key, 600);
    expect(url).toContain("sig=");
    const ok = await request(url);
    expect(ok.statusCode).toBe(200);
    expect(await ok.body.text()).toBe("handed over");
    const tampered = new URL(url);
    tampered.searchParams.set("sig", Buffer.from(randomBytes(32)).toString("base64"));
    const refused = await request(tampered.toString());
    await refused.body.dump();
    expect(refused.statusCode).toBe(403);
  });
});
