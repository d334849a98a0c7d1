// What we encrypt, the reference tools decrypt, and the other way round: the reference `age` CLI
// (filippo.io/age 1.3.2, built from the Go module proxy by `node scripts/install-tools.mjs go age`,
// tools/go/age) and GnuPG (`gpg`, the system's). First at the engine's level, on the sizes where
// age's chunking has its edge cases, then through the real `vrb` on a stored snapshot.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { stringify } from "yaml";
import { decryptingStream } from "../../engine/crypto/decrypt-stream.js";
import { encryptorFor, type EncryptionSettings } from "../../engine/crypto/encryptor.js";
import { loadIdentities } from "../../engine/crypto/identities.js";
import { ExitCode, IntegrityError } from "../../engine/errors.js";
import { packageRoot } from "../../engine/package-info.js";
import { manifestKeyFor, type SnapshotManifest } from "../../engine/snapshot/manifest.js";
import { cliEnv, runVrb, s3For, sharedEnv, tempDir } from "../support/env.js";
import { inspectSnapshot } from "../support/snapshot-archive.js";

const KiB = 1024;
const dir = tempDir("interop");
const gnupgHome = join(dir, "gnupg");
const toolsBin = join(packageRoot(), ".tools", "bin");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function run(cmd: string, args: string[], input?: Uint8Array): SpawnSyncReturns<Buffer> {
  return spawnSync(cmd, args, { input, maxBuffer: 1 << 30, env: { ...process.env, GNUPGHOME: gnupgHome } });
}
function ok(cmd: string, args: string[], input?: Uint8Array): Buffer {
  const r = run(cmd, args, input);
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.error?.message ?? `exit ${r.status}`}\n${r.stderr.toString()}`);
  return r.stdout;
}
const age = (args: string[], input?: Uint8Array) => ok(join(toolsBin, "age"), args, input);
const GPG = ["--batch", "--yes", "--quiet", "--trust-model", "always", "--pinentry-mode", "loopback", "--passphrase", ""];
const gpg = (args: string[], input?: Uint8Array) => ok("gpg", [...GPG, ...args], input);

/** Ours: the engine's encryptor, the plaintext fed in 10,007-byte pieces. */
async function ourEncrypt(settings: EncryptionSettings, plain: Uint8Array): Promise<Buffer> {
  const enc = (await encryptorFor(settings))!;
  let at = 0;
  const web = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= plain.length) return c.close();
      c.enqueue(plain.slice(at, (at += 10_007)));
    },
  });
  const out: Uint8Array[] = [];
  for await (const c of (await enc.encrypt(web)) as unknown as AsyncIterable<Uint8Array>) out.push(c);
  return Buffer.concat(out);
}

/** Ours: the decrypting download every restore, verify, drill and recover reads through. */
async function ourDecrypt(format: "age" | "openpgp", identity: string, cipher: Buffer): Promise<Buffer> {
  const ids = await loadIdentities([{ name: "interop", text: identity }]);
  const { plain } = await decryptingStream({ format, recipients: [] }, ids, Readable.from([cipher.subarray(0, 777), cipher.subarray(777)]), "interop object");
  const out: Buffer[] = [];
  for await (const c of plain) out.push(c as Buffer);
  return Buffer.concat(out);
}

let ageKeyFile: string;
let ageSecret: string;
let ageRecipient: string;
let pgpPublic: string;
let pgpPrivate: string;

beforeAll(() => {
  // The reference age CLI, built once from its pinned Go module (a stamp makes a repeat a no-op).
  const build = spawnSync(process.execPath, [join(packageRoot(), "scripts", "install-tools.mjs"), "go", "age"], { encoding: "utf8" });
  if (build.status !== 0 || !existsSync(join(toolsBin, "age"))) {
    throw new Error(`the reference age CLI could not be built (node scripts/install-tools.mjs go age, Go >= 1.26 and the Go module proxy needed): ${build.stderr}`);
  }
  ageKeyFile = join(dir, "age.key");
  ok(join(toolsBin, "age-keygen"), ["-o", ageKeyFile]);
  ageSecret = readFileSync(ageKeyFile, "utf8");
  ageRecipient = ok(join(toolsBin, "age-keygen"), ["-y", ageKeyFile]).toString().trim();
  mkdirSync(gnupgHome, { mode: 0o700 });
  // GnuPG's modern default (Ed25519 signing, Curve25519 encryption subkey), without a passphrase.
  gpg(["--quick-gen-key", "vrb interop <interop@example.com>", "future-default", "default", "never"]);
  pgpPublic = gpg(["--armor", "--export", "interop@example.com"]).toString();
  pgpPrivate = gpg(["--armor", "--export-secret-keys", "interop@example.com"]).toString();
}, 240_000);

// gpg started an agent for this home; it would outlive the run.
afterAll(() => {
  spawnSync("gpgconf", ["--homedir", gnupgHome, "--kill", "gpg-agent"]);
});

const SIZES: [string, number][] = [
  ["an empty file", 0],
  ["1 byte", 1],
  ["exactly one 64 KiB chunk", 64 * KiB],
  ["exactly two chunks (128 KiB)", 128 * KiB],
  ["5 MiB + 3 bytes", 5 * 1024 * KiB + 3],
];

describe("age: ours and the reference age CLI 1.3.2 read each other's files", () => {
  for (const [name, size] of SIZES) {
    it(`${name}: ours -> age -d, and age -r -> ours`, async () => {
      const data = randomBytes(size);
      const ours = await ourEncrypt({ age: [ageRecipient] }, data);
      expect(sha(age(["-d", "-i", ageKeyFile], ours))).toBe(sha(data));
      const theirs = age(["-r", ageRecipient], data);
      expect(sha(await ourDecrypt("age", ageSecret, theirs))).toBe(sha(data));
      // Same framing both ways: header and nonce aside, the payload is as long as age's.
      const payload = (b: Buffer) => b.length - (b.indexOf("\n", b.indexOf("\n---") + 1) + 1);
      expect(payload(ours)).toBe(payload(theirs));
    });
  }

  it("a byte flipped in the middle of a chunk is refused by both, ours with an IntegrityError (exit 3)", async () => {
    const data = randomBytes(300 * KiB);
    for (const cipher of [age(["-r", ageRecipient], data), await ourEncrypt({ age: [ageRecipient] }, data)]) {
      const bad = Buffer.from(cipher);
      bad[Math.floor(bad.length / 2)]! ^= 0x04;
      const err = await ourDecrypt("age", ageSecret, bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as IntegrityError).exitCode).toBe(ExitCode.integrity);
      expect(String(err)).toMatch(/interop object cannot be decrypted \(age\): payload chunk \d failed authentication/);
      const r = run(join(toolsBin, "age"), ["-d", "-i", ageKeyFile], bad);
      expect(r.status).not.toBe(0);
      expect(r.stderr.toString()).toContain("failed to decrypt and authenticate payload chunk");
    }
  });
});

describe("OpenPGP: ours and GnuPG read each other's messages", () => {
  for (const [name, size] of SIZES) {
    it(`${name}: ours -> gpg --decrypt, and gpg --encrypt (compressed, its default) -> ours`, async () => {
      const data = randomBytes(size);
      const ours = await ourEncrypt({ pgp: [pgpPublic] }, data);
      expect(sha(gpg(["--decrypt"], ours))).toBe(sha(data));
      const theirs = gpg(["--encrypt", "--recipient", "interop@example.com"], data);
      expect(sha(await ourDecrypt("openpgp", pgpPrivate, theirs))).toBe(sha(data));
      // Uncompressed, the shape our native reader takes (the compressed one goes to OpenPGP.js).
      const plainShape = gpg(["--encrypt", "--compress-level", "0", "--recipient", "interop@example.com"], data);
      expect(sha(await ourDecrypt("openpgp", pgpPrivate, plainShape))).toBe(sha(data));
    });
  }

  it("a message OpenPGP.js itself wrote (every OpenPGP backup taken before the native writer) still decrypts, 5 MiB", async () => {
    const pgp = await import("openpgp");
    const data = randomBytes(5 * 1024 * KiB + 3);
    const message = await pgp.createMessage({ binary: data, format: "binary" });
    const older = await pgp.encrypt({ message, encryptionKeys: await pgp.readKey({ armoredKey: pgpPublic }), format: "binary" });
    expect(sha(await ourDecrypt("openpgp", pgpPrivate, Buffer.from(older)))).toBe(sha(data));
  });

  it("a message cut short (inside the data, or just its last bytes) is refused with an IntegrityError", async () => {
    const ours = await ourEncrypt({ pgp: [pgpPublic] }, randomBytes(200 * KiB));
    for (const cut of [ours.subarray(0, ours.length - 100 * KiB), ours.subarray(0, ours.length - 1)]) {
      const err = await ourDecrypt("openpgp", pgpPrivate, cut).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect(String(err)).toContain("interop object cannot be decrypted (openpgp)");
    }
  });

  it("a byte flipped in the middle of the encrypted data is refused by both, ours with an IntegrityError (exit 3)", async () => {
    const data = randomBytes(300 * KiB);
    for (const cipher of [gpg(["--encrypt", "--compress-level", "0", "--recipient", "interop@example.com"], data), await ourEncrypt({ pgp: [pgpPublic] }, data)]) {
      const bad = Buffer.from(cipher);
      bad[Math.floor(bad.length / 2)]! ^= 0x04;
      const err = await ourDecrypt("openpgp", pgpPrivate, bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect((err as IntegrityError).exitCode).toBe(ExitCode.integrity);
      expect(run("gpg", [...GPG, "--decrypt"], bad).status).not.toBe(0);
    }
  });
});

describe("through vrb: a stored encrypted snapshot and the reference tools", () => {
  const env = sharedEnv();
  const s3 = s3For(env);
  const bucket = env.bucket!;
  const nodes = env.nodes.map((n) => n.apiAddr);
  afterAll(() => s3.destroy());

  async function get(key: string): Promise<Buffer> {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }
  const put = (key: string, body: Uint8Array) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  /** A `vrb backup` encrypted as `encryption` says; its stored object, manifest and reference. */
  async function backup(name: string, encryption: EncryptionSettings) {
    const prefix = `interop-${name}/`;
    const policy = join(dir, `${name}.yaml`);
    writeFileSync(
      policy,
      stringify({
        cluster: { name: `interop-${name}`, nodes },
        destination: { bucket, prefix, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
        encryption,
      }),
    );
    const r = await runVrb(["backup", "--policy", policy, "--json"], cliEnv(env));
    expect(r.code, r.stderr).toBe(0);
    const { key } = JSON.parse(r.stdout) as { key: string };
    const manifest = JSON.parse((await get(manifestKeyFor(key))).toString()) as SnapshotManifest;
    return { key, prefix, manifest, stored: await get(key), ref: `s3://${bucket}/${key}` };
  }

  /** Puts `cipher` in place of the stored object, with the manifest's size and SHA-256 made to match it. */
  async function replaceStored(b: Awaited<ReturnType<typeof backup>>, cipher: Buffer): Promise<void> {
    await put(b.key, cipher);
    await put(manifestKeyFor(b.key), Buffer.from(JSON.stringify({ ...b.manifest, sha256: sha(cipher), bytes: cipher.length })));
  }

  const verify = (b: { ref: string; prefix: string }, identityFile: string) => runVrb(["verify", b.ref, "--prefix", b.prefix, "--identity", identityFile, "--json"], cliEnv(env));

  it("age: age -d reads what vrb backup stored; vrb verify reads the same snapshot re-encrypted by age -r; a damaged chunk is refused (exit 3)", async () => {
    const b = await backup("age", { age: [ageRecipient] });
    const plain = age(["-d", "-i", ageKeyFile], b.stored);
    expect(sha(plain)).toBe(sha(await ourDecrypt("age", ageSecret, b.stored)));
    expect((await inspectSnapshot(plain)).meta.Index).toBe(b.manifest.raft.index);
    await replaceStored(b, age(["-r", ageRecipient], plain));
    const v = await verify(b, ageKeyFile);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ raft: { index: b.manifest.raft.index }, encryption: { format: "age", decrypted: true, plaintext: { bytes: plain.length } } });
    // The manifest matches the damaged object: the refusal is the decryption's, not the checksum's.
    const bad = age(["-r", ageRecipient], plain);
    bad[Math.floor(bad.length / 2)]! ^= 0x04;
    await replaceStored(b, bad);
    const refused = await verify(b, ageKeyFile);
    expect(refused.code, refused.stderr).toBe(ExitCode.integrity);
    expect(refused.stderr).toMatch(/cannot be decrypted \(age\): payload chunk \d+ failed authentication/);
  });

  it("OpenPGP: gpg --decrypt reads what vrb backup stored; vrb verify reads the snapshot re-encrypted by gpg; a damaged message is refused (exit 3)", async () => {
    const b = await backup("pgp", { pgp: [pgpPublic] });
    const plain = gpg(["--decrypt"], b.stored);
    expect(sha(plain)).toBe(sha(await ourDecrypt("openpgp", pgpPrivate, b.stored)));
    expect((await inspectSnapshot(plain)).meta.Index).toBe(b.manifest.raft.index);
    const keyFile = join(dir, "gpg-private.asc");
    writeFileSync(keyFile, pgpPrivate, { mode: 0o600 });
    await replaceStored(b, gpg(["--encrypt", "--recipient", "interop@example.com"], plain));
    const v = await verify(b, keyFile);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ raft: { index: b.manifest.raft.index }, encryption: { format: "openpgp", decrypted: true, plaintext: { bytes: plain.length } } });
    const bad = gpg(["--encrypt", "--compress-level", "0", "--recipient", "interop@example.com"], plain);
    bad[Math.floor(bad.length / 2)]! ^= 0x04;
    await replaceStored(b, bad);
    const refused = await verify(b, keyFile);
    expect(refused.code, refused.stderr).toBe(ExitCode.integrity);
    expect(refused.stderr).toContain("cannot be decrypted (openpgp)");
  });
});
