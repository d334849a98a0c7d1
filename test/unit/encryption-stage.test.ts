import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import * as openpgp from "openpgp";
import { ConfigError, IntegrityError, loadIdentities, validatePolicy } from "../../engine/index.js";
import { StagePipeline, type Stage } from "../../engine/backup/pipeline.js";
import { requireIdentityFor } from "../../engine/crypto/identities.js";
import { HashingStage } from "../../engine/backup/stages/hashing.js";
import { encryptorFor, type EncryptionSettings } from "../../engine/crypto/encryptor.js";
import { EncryptionStage } from "../../engine/backup/stages/encryption.js";
import { decryptingStream } from "../../engine/crypto/decrypt-stream.js";
import { inspectSnapshotFile } from "../../engine/snapshot/inventory/inspect.js";

const data = randomBytes(3 * 1024 * 1024 + 17);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

class Collect implements Stage {
  readonly name = "collect";
  readonly chunks: Buffer[] = [];
  write(c: Buffer): void {
    this.chunks.push(Buffer.from(c));
  }
  finish(): void {}
  abort(): void {}
}

/** The pass as a backup runs it: plaintext hashed, ciphertext hashed and collected (the upload's place). */
async function encryptThroughPipeline(settings: EncryptionSettings) {
  const enc = (await encryptorFor(settings))!;
  const plain = new HashingStage();
  const stored = new HashingStage();
  const sink = new Collect();
  const source = Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += 65_536) yield data.subarray(i, i + 65_536);
    })(),
    { objectMode: false },
  );
  await new StagePipeline().run({ name: "source", stream: source }, [plain, new EncryptionStage(enc, [stored, sink])]);
  const cipher = Buffer.concat(sink.chunks);
  return { enc, cipher, plain, stored };
}

async function decrypt(info: Parameters<typeof decryptingStream>[0], idText: string, cipher: Buffer, passphrase?: string): Promise<Buffer> {
  const ids = await loadIdentities([{ name: "id", text: idText }], passphrase);
  requireIdentityFor(info, ids, "test object");
  const { plain } = await decryptingStream(info, ids, Readable.from([cipher.subarray(0, 999), cipher.subarray(999)]), "test object");
  const out: Buffer[] = [];
  for await (const c of plain) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe("EncryptionStage and the decrypting download", () => {
  it("age: ciphertext out, plaintext hashed, decrypts back; a flipped byte is an IntegrityError; another identity is refused (exit 2)", async () => {
    const id = await generateX25519Identity();
    const { enc, cipher, plain, stored } = await encryptThroughPipeline({ age: [await identityToRecipient(id)] });
    expect(cipher.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
    expect(plain.sha256).toBe(sha(data));
    expect(stored.sha256).toBe(sha(cipher));
    expect(sha(await decrypt(enc.info, id, cipher))).toBe(sha(data));
    const bad = Buffer.from(cipher);
    bad[bad.length - 100]! ^= 1;
    await expect(decrypt(enc.info, id, bad)).rejects.toBeInstanceOf(IntegrityError);
    const other = await loadIdentities([{ name: "other", text: await generateX25519Identity() }]);
    expect(() => requireIdentityFor(enc.info, other, "x")).toThrow(ConfigError);
    expect(() => requireIdentityFor(enc.info, undefined, "x")).toThrow(/give --identity/);
  });

  it("OpenPGP: a binary message for the key's fingerprint that the passphrase-protected private key decrypts", async () => {
    const k = await openpgp.generateKey({ userIDs: [{ name: "ops" }], passphrase: "a long passphrase", format: "armored" });
    const { enc, cipher } = await encryptThroughPipeline({ pgp: [k.publicKey] });
    expect(enc.info.recipients).toEqual([(await openpgp.readKey({ armoredKey: k.publicKey })).getFingerprint()]);
    expect(sha(await decrypt(enc.info, k.privateKey, cipher, "a long passphrase"))).toBe(sha(data));
    await expect(loadIdentities([{ name: "k", text: k.privateKey }], "wrong")).rejects.toThrow(/does not unlock/);
  });

  it("a file of the ciphertext (a stored snapshot copied by hand) is refused by vrb inspect's file path, naming its format and how to decrypt it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vrb-cipher-file-"));
    try {
      const id = await generateX25519Identity();
      const k = await openpgp.generateKey({ userIDs: [{ name: "ops" }], format: "armored" });
      const cases: [string, EncryptionSettings, string][] = [
        ["age", { age: [await identityToRecipient(id)] }, "age --decrypt -i IDENTITY"],
        ["OpenPGP", { pgp: [k.publicKey] }, "gpg --decrypt"],
      ];
      for (const [format, settings, decryptWith] of cases) {
        const file = join(dir, `${format}.snap`);
        writeFileSync(file, (await encryptThroughPipeline(settings)).cipher);
        const err = await inspectSnapshotFile(file).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as ConfigError).message).toContain(`is an ${format}-encrypted snapshot, not a snapshot archive: decrypt it first (${decryptWith} ${file} > plain.snap)`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the policy refuses age and pgp together, and a private key given as a recipient", async () => {
    const base = { cluster: { name: "c", nodes: ["http://127.0.0.1:8200"] }, destination: { bucket: "b-ucket" } };
    expect(() => validatePolicy({ ...base, encryption: { age: ["age1abc"], pgp: ["k.asc"] } })).toThrow(/encryption.*not both/s);
    const k = await openpgp.generateKey({ userIDs: [{ name: "ops" }], format: "armored" });
    await expect(encryptorFor({ pgp: [k.privateKey] })).rejects.toThrow(/PRIVATE key/);
  });
});
