// The crypto libraries are loaded on first use: most commands never encrypt, and their start-up
// should not pay for parsing OpenPGP.js.
import { existsSync, readFileSync } from "node:fs";
import type * as openpgp from "openpgp";
import { ConfigError } from "../errors.js";

/** How a stored object is encrypted, as the manifest records it (never a private key). */
export interface EncryptionInfo {
  format: "age" | "openpgp";
  /** age recipient strings (`age1...`), or the OpenPGP public keys' primary fingerprints (hex). */
  recipients: string[];
}

/** The policy's `encryption` section (engine/policy.ts). */
export interface EncryptionSettings {
  age?: string[];
  pgp?: string[];
}

/** Turns a plaintext web stream into the ciphertext web stream, chunk by chunk (no whole-file buffer). */
export interface Encryptor {
  readonly info: EncryptionInfo;
  encrypt(plain: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>>;
}

const ARMORED_PUBLIC = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

/** Reads one `encryption.pgp` entry: armored text as is, anything else is a path to an armored key. */
async function readPublicKey(entry: string, field: string): Promise<openpgp.PublicKey> {
  const { readKey } = await import("openpgp");
  let text = entry;
  if (!entry.trimStart().startsWith("-----BEGIN")) {
    if (!existsSync(entry)) throw new ConfigError(`${field}: ${entry} is neither an armored OpenPGP public key nor a readable file`, { field });
    text = readFileSync(entry, "utf8");
  }
  if (!text.includes(ARMORED_PUBLIC)) {
    const hint = text.includes("PRIVATE KEY BLOCK") ? " (this is a PRIVATE key: give the public key, `gpg --armor --export KEYID`)" : "";
    throw new ConfigError(`${field}: not an armored OpenPGP public key${hint}`, { field });
  }
  let key: openpgp.Key;
  try {
    key = await readKey({ armoredKey: text });
  } catch (err) {
    throw new ConfigError(`${field}: the OpenPGP public key cannot be read: ${err instanceof Error ? err.message : String(err)}`, { field, cause: err });
  }
  try {
    await key.getEncryptionKey();
  } catch (err) {
    throw new ConfigError(`${field}: OpenPGP key ${key.getFingerprint()} has no usable encryption (sub)key: ${err instanceof Error ? err.message : String(err)}`, {
      field,
      cause: err,
    });
  }
  return key.toPublic();
}

/**
 * The encryptor for the policy's `encryption` section, or undefined without one. One stored object
 * has one format: age and pgp recipients together are refused by the policy schema.
 */
export async function encryptorFor(settings: EncryptionSettings | undefined): Promise<Encryptor | undefined> {
  const age = settings?.age ?? [];
  const pgp = settings?.pgp ?? [];
  if (age.length && pgp.length) {
    throw new ConfigError("encryption: give either age or pgp recipients, not both (one stored object has one format)", { field: "encryption" });
  }
  if (age.length) {
    const { ageEncrypt, checkAgeRecipient } = await import("./age-stream.js");
    for (const [i, r] of age.entries()) {
      try {
        await checkAgeRecipient(r);
      } catch (err) {
        throw new ConfigError(`encryption.age[${i}]: not an age recipient (${err instanceof Error ? err.message : String(err)}); give an 'age1...' public key`, {
          field: `encryption.age[${i}]`,
        });
      }
    }
    const recipients = [...age];
    return { info: { format: "age", recipients: [...age] }, encrypt: (plain) => ageEncrypt(recipients, plain) };
  }
  if (pgp.length) {
    const keys = await Promise.all(pgp.map((entry, i) => readPublicKey(entry, `encryption.pgp[${i}]`)));
    return {
      info: { format: "openpgp", recipients: keys.map((k) => k.getFingerprint()) },
      encrypt: async (plain) => {
        // A fresh session key per message; node:crypto runs the bulk when the keys lead to AES
        // CFB with an MDC (what OpenPGP.js writes for them too), OpenPGP.js itself otherwise.
        const { nativePgpPlan, pgpEncrypt } = await import("./openpgp-stream.js");
        const plan = await nativePgpPlan(keys);
        if (plan) return pgpEncrypt(plan, plain);
        const openpgp = await import("openpgp");
        const message = await openpgp.createMessage({ binary: plain, format: "binary" });
        return (await openpgp.encrypt({ message, encryptionKeys: keys, format: "binary" })) as ReadableStream<Uint8Array>;
      },
    };
  }
  return undefined;
}
