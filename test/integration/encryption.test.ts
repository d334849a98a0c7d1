import { createHash, generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import * as openpgp from "openpgp";
import { stringify } from "yaml";
import { ExitCode, loadIdentities, runBackup, validatePolicy, type BackupReport, type DrillReport } from "../../engine/index.js";
import { STATUS_OBJECT_NAME } from "../../engine/status/record.js";
import { manifestKeyFor, type SnapshotManifest } from "../../engine/snapshot/manifest.js";
import { localS3Client } from "../../devenv/s3server.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { decryptingStream } from "../../engine/crypto/decrypt-stream.js";
import type { InventoryDiff } from "../../engine/snapshot/inventory/diff.js";
import { cliEnv, policyStoreOn, rootClient, runVrb, s3For, sharedEnv, tempDir } from "../support/env.js";
import { inspectSnapshot } from "../support/snapshot-archive.js";

const env = sharedEnv();
const s3 = s3For(env);
const bucket = env.bucket!;
const dir = tempDir("enc");
const PASSPHRASE = "correct horse battery staple";
const SECRETS = 12;

const destination = (prefix: string) => ({ bucket, prefix, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true });
const nodes = env.nodes.map((n) => n.apiAddr);

async function get(key: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}
const manifestOf = async (key: string) => JSON.parse((await get(manifestKeyFor(key))).toString("utf8")) as SnapshotManifest;
const keysUnder = async (prefix: string) => ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
/** Snapshot, files and manifest objects: what a refused or failed backup must not leave (its status record says it failed). */
const backupObjectsUnder = async (prefix: string) => (await keysUnder(prefix)).filter((k) => !k.endsWith(`/${STATUS_OBJECT_NAME}`));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Decrypts a stored object with the engine's own stream (the libraries underneath) and returns the plaintext. */
async function decrypt(key: string, manifest: SnapshotManifest, idText: string, passphrase?: string): Promise<Buffer> {
  const ids = await loadIdentities([{ name: "test", text: idText }], passphrase);
  const { plain } = await decryptingStream(manifest.encryption!, ids, Readable.from([await get(key)]), key);
  const chunks: Buffer[] = [];
  for await (const c of plain) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function writePolicy(name: string, doc: Record<string, unknown>): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(doc));
  return path;
}

let ageId: string;
let ageIdFile: string;
let otherIdFile: string;
let pgpPub: string;
let pgpPriv: string;
let pgpPrivFile: string;
let configDir: string;
let keysFile: string;

beforeAll(async () => {
  ageId = await generateX25519Identity();
  ageIdFile = join(dir, "ops.agekey");
  writeFileSync(ageIdFile, `# created for the test\n${ageId}\n`, { mode: 0o600 });
  otherIdFile = join(dir, "other.agekey");
  writeFileSync(otherIdFile, `${await generateX25519Identity()}\n`, { mode: 0o600 });
  const pgp = await openpgp.generateKey({ userIDs: [{ name: "ops team", email: "ops@example.com" }], passphrase: PASSPHRASE, format: "armored" });
  pgpPub = join(dir, "ops.asc");
  writeFileSync(pgpPub, pgp.publicKey);
  pgpPriv = pgp.privateKey;
  pgpPrivFile = join(dir, "ops-private.asc");
  writeFileSync(pgpPrivFile, pgpPriv, { mode: 0o600 });
  // A configuration folder as on a node: server config, a CA certificate, the TLS private key.
  configDir = join(dir, "etc-openbao");
  mkdirSync(join(configDir, "tls"), { recursive: true });
  writeFileSync(join(configDir, "openbao.hcl"), 'storage "raft" { path = "/var/lib/openbao" }\n', { mode: 0o644 });
  const { privateKey } = generateKeyPairSync("ec", {
    namedCurve: "prime256v1",
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  writeFileSync(join(configDir, "tls", "server.key"), privateKey, { mode: 0o600 });
  chmodSync(join(configDir, "tls", "server.key"), 0o600);
  writeFileSync(join(configDir, "tls", "ca.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", { mode: 0o640 });
  chmodSync(join(configDir, "tls", "ca.crt"), 0o640);
  keysFile = join(dir, "keys.json");
  writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold, root_token: env.keys!.rootToken }), { mode: 0o600 });
  const client = rootClient(env);
  await ensureKvV2(client, "enc-kv");
  for (let i = 0; i < SECRETS; i++) await kvPut(client, "enc-kv", `app/s-${i}`, { value: `enc-${i}` });
  await client.close();
});

afterAll(() => s3.destroy());

describe("client-side encryption (age)", () => {
  let report: BackupReport;
  let manifest: SnapshotManifest;
  /** The stored object decrypted by the engine's own stream. */
  let plain: Buffer;
  const prefix = "enc-age/";
  let policy: string;

  beforeAll(async () => {
    policy = writePolicy("age", {
      cluster: { name: "enc-age", nodes },
      destination: destination(prefix),
      encryption: { age: [await identityToRecipient(ageId)] },
      files: { paths: [configDir] },
    });
    const r = await runVrb(["backup", "--policy", policy, "--json"], cliEnv(env));
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(r.stdout) as BackupReport;
    manifest = await manifestOf(report.key);
    plain = await decrypt(report.key, manifest, ageId);
  });

  it("stores age ciphertext that decrypts to the whole snapshot the manifest describes; the manifest holds the ciphertext's digest and names the recipient only", async () => {
    const stored = await get(report.key);
    expect(stored.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(false);
    expect(stored.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
    expect(sha(stored)).toBe(manifest.sha256);
    expect(stored.length).toBe(manifest.bytes);
    expect(plain.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(true);
    const archive = await inspectSnapshot(plain);
    expect(archive.meta.Index).toBe(manifest.raft.index);
    expect(archive.checkedEntries).toContain("state.bin");
    // One digest per stored byte: the cipher authenticates the plaintext (docs/encryption.md).
    expect(manifest.plaintext).toBeUndefined();
    expect(manifest.encryption).toEqual({ format: "age", recipients: [await identityToRecipient(ageId)] });
    expect(JSON.stringify(manifest)).not.toContain("AGE-SECRET-KEY");
  });

  it("vrb verify checks the stored object without an identity, and decrypts and checks the archive with one", async () => {
    const ref = `s3://${bucket}/${report.key}`;
    const keyless = await runVrb(["verify", ref, "--prefix", prefix, "--json"], cliEnv(env));
    expect(keyless.code, keyless.stderr).toBe(0);
    expect(JSON.parse(keyless.stdout)).toMatchObject({ sha256: manifest.sha256, encryption: { format: "age", decrypted: false }, archive: { checked: [] } });
    const deep = await runVrb(["verify", ref, "--prefix", prefix, "--identity", ageIdFile, "--json"], cliEnv(env));
    expect(deep.code, deep.stderr).toBe(0);
    const v = JSON.parse(deep.stdout) as { encryption: { decrypted: boolean; plaintext: { sha256?: string; bytes: number } }; archive: { checked: string[] } };
    expect(v.encryption.decrypted).toBe(true);
    expect(v.encryption.plaintext).toEqual({ bytes: plain.length });
    expect(v.archive.checked).toContain("state.bin");
    const text = await runVrb(["verify", ref, "--prefix", prefix, "--identity", ageIdFile], cliEnv(env));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("decrypted (age) and authenticated");
  });

  it("an older manifest that recorded the plaintext's SHA-256 is still held to it: matching passes, differing exits 3", async () => {
    // The same stored object under a prefix of its own, its manifest as older versions wrote it.
    const oldPrefix = "enc-age-old/";
    const key = report.key.replace(prefix, oldPrefix);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await get(report.key) }));
    const putManifest = (plaintextSha256: string) =>
      s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: manifestKeyFor(key),
          Body: JSON.stringify({ ...manifest, key, files: undefined, plaintext: { sha256: plaintextSha256, bytes: plain.length } }),
        }),
      );
    const ref = `s3://${bucket}/${key}`;
    await putManifest(sha(plain));
    const ok = await runVrb(["verify", ref, "--prefix", oldPrefix, "--identity", ageIdFile, "--json"], cliEnv(env));
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ encryption: { decrypted: true, plaintext: { sha256: sha(plain), bytes: plain.length } } });
    await putManifest(sha(Buffer.from("another snapshot")));
    const refused = await runVrb(["verify", ref, "--prefix", oldPrefix, "--identity", ageIdFile], cliEnv(env));
    expect(refused.code, refused.stderr).toBe(ExitCode.integrity);
    expect(refused.stderr).toContain(`decrypted sha256 ${sha(plain)}, manifest says ${sha(Buffer.from("another snapshot"))}`);
  });

  it("a pre-signed URL of the encrypted snapshot is decrypted and proven like a stored one (vrb verify URL --identity)", async () => {
    const urls = await runVrb(["presign", `s3://${bucket}/${report.key}`, "--prefix", prefix, "--json"], cliEnv(env));
    expect(urls.code, urls.stderr).toBe(0);
    const { snapshotUrl, manifestUrl } = JSON.parse(urls.stdout) as { snapshotUrl: string; manifestUrl: string };
    // No bucket credentials: the URLs are all the other side has.
    const other = { HOME: tempDir("enc-url-home") };
    const v = await runVrb(["verify", snapshotUrl, "--manifest-url", manifestUrl, "--identity", ageIdFile, "--json"], other);
    expect(v.code, v.stderr).toBe(0);
    const r = JSON.parse(v.stdout) as { sha256: string; encryption: { decrypted: boolean; plaintext: { sha256?: string; bytes: number } }; archive: { checked: string[] } };
    expect(r.sha256).toBe(manifest.sha256);
    expect(r.encryption.decrypted).toBe(true);
    expect(r.encryption.plaintext).toEqual({ bytes: plain.length });
    expect(r.archive.checked).toContain("state.bin");
    const wrong = await runVrb(["verify", snapshotUrl, "--manifest-url", manifestUrl, "--identity", otherIdFile], other);
    expect(wrong.code).toBe(2);
  });

  it("vrb export hands the encrypted snapshot over as stored (ciphertext, proven by SHA-256 and size); the other side checks its archive with the identity", async () => {
    const handover = `enc-handover-${Date.now().toString(36)}`;
    await s3.send(new CreateBucketCommand({ Bucket: handover }));
    const putUrl = (key: string) => getSignedUrl(s3, new PutObjectCommand({ Bucket: handover, Key: key }), { expiresIn: 900 });
    const r = await runVrb(
      ["export", report.key, "--prefix", prefix, "--to-url", await putUrl(report.key), "--manifest-url", await putUrl(manifestKeyFor(report.key)), "--json"],
      cliEnv(env),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/encrypted \(age\): sent as stored; its archive is checked on the other side with the identity/);
    const copy = await s3.send(new GetObjectCommand({ Bucket: handover, Key: report.key }));
    expect(sha(Buffer.from(await copy.Body!.transformToByteArray()))).toBe(manifest.sha256);
    const urls = await runVrb(["presign", `s3://${handover}/${report.key}`, "--json"], cliEnv(env));
    expect(urls.code, urls.stderr).toBe(0);
    const { snapshotUrl, manifestUrl } = JSON.parse(urls.stdout) as { snapshotUrl: string; manifestUrl: string };
    const v = await runVrb(["verify", snapshotUrl, "--manifest-url", manifestUrl, "--identity", ageIdFile, "--json"], { HOME: tempDir("enc-export-home") });
    expect(v.code, v.stderr).toBe(0);
    expect((JSON.parse(v.stdout) as { archive: { checked: string[] } }).archive.checked).toContain("state.bin");
  });

  it("vrb inspect reads the encrypted snapshot's keys through its decryption with --identity; without one it is refused (exit 2) naming the flag", async () => {
    const without = await runVrb(["inspect", report.key, "--prefix", prefix], cliEnv(env));
    expect(without.code, without.stderr).toBe(2);
    expect(without.stderr).toMatch(/is encrypted \(age recipients age1[a-z0-9]+\): give --identity FILE/);
    const r = await runVrb(["inspect", report.key, "--prefix", prefix, "--identity", ageIdFile, "--json"], cliEnv(env));
    expect(r.code, r.stderr).toBe(0);
    const inspected = JSON.parse(r.stdout) as { meta: { index: number }; totalKeys: number; mounts: { path?: string; keys: number }[] };
    expect(inspected.meta.index).toBe(manifest.raft.index);
    // The same counts the backup recorded from the plaintext.
    expect(inspected.totalKeys).toBe(manifest.inventory!.totalKeys);
    expect(inspected.mounts.find((m) => m.path === "enc-kv/")?.keys).toBeGreaterThanOrEqual(SECRETS);
  });

  it("stores the configuration files encrypted beside the snapshot; vrb files lists them and writes identical bytes and modes", async () => {
    expect(manifest.files!.key).toBe(`${report.key}.files.tar`);
    const storedFiles = await get(manifest.files!.key);
    expect(storedFiles.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
    expect(storedFiles.toString("latin1")).not.toContain("PRIVATE KEY");
    const byPath = new Map(manifest.files!.entries.map((e) => [e.path, e]));
    expect([...byPath.keys()].sort()).toEqual([join(configDir, "openbao.hcl"), join(configDir, "tls", "ca.crt"), join(configDir, "tls", "server.key")]);
    expect(byPath.get(join(configDir, "tls", "server.key"))).toMatchObject({ mode: 0o600, secret: true });
    const ref = `s3://${bucket}/${report.key}`;
    const list = await runVrb(["files", ref, "--list"], cliEnv(env));
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(join(configDir, "tls", "server.key"));
    const out = join(dir, "restored");
    const r = await runVrb(["files", ref, "--out", out, "--identity", ageIdFile], cliEnv(env));
    expect(r.code, r.stderr).toBe(0);
    for (const e of manifest.files!.entries) {
      const to = join(out, e.path);
      expect(sha(readFileSync(to))).toBe(sha(readFileSync(e.path)));
      expect(statSync(to).mode & 0o777).toBe(statSync(e.path).mode & 0o777);
    }
    expect(statSync(join(out, configDir, "tls")).mode & 0o777).toBe(0o700);
    const again = await runVrb(["files", ref, "--out", out, "--identity", ageIdFile], cliEnv(env));
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("--force");
  });

  it("restore without an identity, or with a wrong one, is refused (exit 2) before any node is asked", async () => {
    const ref = `s3://${bucket}/${report.key}`;
    // An address where nothing listens: a refusal that came after contacting it would be a connection error.
    const target = "http://127.0.0.1:9";
    const none = await runVrb(["restore", ref, "--nodes", target, "--unseal-keys-file", keysFile], cliEnv(env));
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain("is encrypted");
    expect(none.stderr).toContain("Nothing was changed");
    const wrong = await runVrb(["restore", ref, "--nodes", target, "--unseal-keys-file", keysFile, "--identity", otherIdFile], cliEnv(env));
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stderr).toContain("none of the identities given is one of them");
  });

  it("vrb drill with the identity decrypts while downloading and brings every secret back", async () => {
    const r = await runVrb(
      ["drill", `s3://${bucket}/${report.key}`, "--prefix", prefix, "--nodes", "1", "--unseal-keys-file", keysFile, "--identity", ageIdFile, "--json"],
      cliEnv(env),
      { timeoutMs: 240_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as DrillReport;
    expect(d.ok).toBe(true);
    expect(d.inventory.find((m) => m.mount === "enc-kv")?.secrets).toBe(SECRETS);
  });

  it("vrb diff reads an encrypted snapshot whose manifest has no inventory through its decryption with --identity; without one it is refused (exit 2) naming the flag", async () => {
    const second = await runVrb(["backup", "--policy", policy, "--json"], cliEnv(env));
    expect(second.code, second.stderr).toBe(0);
    const key = (JSON.parse(second.stdout) as BackupReport).key;
    // What a backup whose inventory failed leaves: a manifest without one.
    const { inventory, ...rest } = await manifestOf(key);
    expect(inventory?.totalKeys).toBeGreaterThan(0);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKeyFor(key), Body: JSON.stringify(rest), ContentType: "application/json" }));

    const without = await runVrb(["diff", report.key, key, "--prefix", prefix, "--json"], cliEnv(env));
    expect(without.code, without.stderr).toBe(2);
    expect(without.stderr).toMatch(/is encrypted \(age recipients age1[a-z0-9]+\): give --identity FILE/);
    const r = await runVrb(["diff", report.key, key, "--prefix", prefix, "--identity", ageIdFile, "--json"], cliEnv(env));
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as InventoryDiff;
    expect(d.a.from).toBe("manifest");
    expect(d.b.from).toBe("inspect");
    // Read from the decrypted snapshot: the counts the backup had recorded.
    expect(d.total.after.keys).toBe(inventory!.totalKeys);
    expect(d.total.before.keys).toBe(manifest.inventory!.totalKeys);
  });
});

describe("vrb recover of an encrypted snapshot", () => {
  it("decrypts it on its way to the throwaway node with --identity: the live secret compares as the same", async () => {
    const policy = writePolicy("age-recover", {
      cluster: { name: "enc-recover", nodes },
      destination: destination("enc-recover/"),
      encryption: { age: [await identityToRecipient(ageId)] },
    });
    const backup = await runVrb(["backup", "--policy", policy, "--json"], cliEnv(env));
    expect(backup.code, backup.stderr).toBe(0);
    const args = ["recover", "latest", "--policy", policy, "--unseal-keys-file", keysFile, "--path", "enc-kv/app/s-0", "--dry-run", "--json"];
    const without = await runVrb(args, cliEnv(env));
    expect(without.code, without.stderr).toBe(2);
    const r = await runVrb([...args, "--identity", ageIdFile], cliEnv(env), { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { paths: { path: string; state: string }[]; teardown: { stopped: number } };
    expect(report.paths).toEqual([expect.objectContaining({ path: "enc-kv/app/s-0", state: "same" })]);
    expect(report.teardown.stopped).toBe(1);
    expect(r.stdout + r.stderr).not.toContain("enc-0");
  });
});

describe("client-side encryption (OpenPGP)", () => {
  it("stores an OpenPGP binary message that the private key (passphrase from the environment) decrypts to the snapshot the manifest describes; verify --identity passes", async () => {
    const prefix = "enc-pgp/";
    const policy = validatePolicy({ cluster: { name: "enc-pgp", nodes }, destination: destination(prefix), encryption: { pgp: [pgpPub] } });
    const report = await runBackup({ policy, token: env.keys!.rootToken, store: policyStoreOn(s3, policy) });
    const manifest = await manifestOf(report.key);
    const stored = await get(report.key);
    expect(stored.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(false);
    // An OpenPGP packet header (new or old format) with the high bit set; a PKESK packet first.
    expect(stored[0]! & 0x80).toBe(0x80);
    const fingerprint = (await openpgp.readKey({ armoredKey: readFileSync(pgpPub, "utf8") })).getFingerprint();
    expect(manifest.encryption).toEqual({ format: "openpgp", recipients: [fingerprint] });
    expect((await inspectSnapshot(await decrypt(report.key, manifest, pgpPriv, PASSPHRASE))).meta.Index).toBe(manifest.raft.index);
    expect(manifest.plaintext).toBeUndefined();
    const ref = `s3://${bucket}/${report.key}`;
    await expect(loadIdentities([{ name: pgpPrivFile, text: pgpPriv }])).rejects.toThrow(/passphrase-protected; set VRB_IDENTITY_PASSPHRASE/);
    const v = await runVrb(["verify", ref, "--prefix", prefix, "--identity", pgpPrivFile], cliEnv(env, { VRB_IDENTITY_PASSPHRASE: PASSPHRASE }));
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain("decrypted (openpgp)");
    expect(v.stdout + v.stderr).not.toContain(PASSPHRASE);
  });
});

describe("configuration files without encryption", () => {
  it("a private key among the files is refused (exit 2) before anything is uploaded", async () => {
    const prefix = "enc-plainfiles/";
    const policy = writePolicy("plain-files", { cluster: { name: "enc-plain", nodes }, destination: destination(prefix), files: { paths: [`${configDir}/**/*.key`] } });
    const r = await runVrb(["backup", "--policy", policy], cliEnv(env));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("files.allowPlaintextSecrets");
    expect(r.stderr).toContain(join(configDir, "tls", "server.key"));
    expect(await backupObjectsUnder(prefix)).toEqual([]);
  });

  it("a files upload that fails after the snapshot upload leaves no manifest (and no snapshot)", async () => {
    const prefix = "enc-failfiles/";
    const policy = validatePolicy({
      cluster: { name: "enc-fail", nodes },
      destination: destination(prefix),
      files: { paths: [join(configDir, "openbao.hcl")] },
    });
    // The real S3 server, with the files archive's PUT refused on the client side.
    const failing = localS3Client(env.s3!);
    failing.middlewareStack.add(
      (next, ctx) => async (args) => {
        const input = args.input as { Key?: string };
        if (ctx.commandName === "PutObjectCommand" && input.Key?.endsWith(".files.tar")) throw Object.assign(new Error("injected: files upload refused"), { name: "AccessDenied" });
        return next(args);
      },
      { step: "initialize", name: "failFilesUpload" },
    );
    try {
      await expect(runBackup({ policy, token: env.keys!.rootToken, store: policyStoreOn(failing, policy) })).rejects.toThrow(/files upload refused/);
    } finally {
      failing.destroy();
    }
    const left = await backupObjectsUnder(prefix);
    expect(left.filter((k) => k.endsWith(".manifest.json"))).toEqual([]);
    expect(left).toEqual([]);
  });
});
