// The crypto libraries are loaded on first use: most commands never encrypt, and their start-up
// should not pay for parsing OpenPGP.js.
import { readFileSync } from "node:fs";
import type * as openpgp from "openpgp";
import { ConfigError } from "../errors.js";
import { registerSecret } from "../redact.js";
import type { EncryptionInfo } from "./encryptor.js";

/** Env var holding the passphrase of an armored OpenPGP private key given as an identity. */
export const IDENTITY_PASSPHRASE_ENV = "VRB_IDENTITY_PASSPHRASE";

declare const unlockedPgpKey: unique symbol;

/**
 * An unlocked OpenPGP private key as `loadIdentities` returns it, opaque to everyone else. The
 * published declarations must not name OpenPGP.js's types: they import a package OpenPGP.js does
 * not depend on, so a consumer's type check (skipLibCheck false) would fail inside them.
 */
export interface PgpPrivateKey {
  readonly [unlockedPgpKey]: true;
}

/** Decryption identities: age secret keys and unlocked OpenPGP private keys, with what they decrypt. */
export interface Identities {
  age: { secret: string; recipient: string }[];
  pgp: { key: PgpPrivateKey; fingerprint: string }[];
}

/** One identity as given: a file (`--identity FILE`) or a secret text (the StagedRestore input). */
export interface IdentitySource {
  /** Names it in errors: a path, or e.g. "identities[0]". Never the content. */
  name: string;
  text: string;
}

export function identitySourcesFromFiles(paths: readonly string[]): IdentitySource[] {
  return paths.map((p) => {
    try {
      // `-`: standard input (a secret piped in, e.g. by the DR stack's files step, never a file on disk).
      return { name: p === "-" ? "stdin" : p, text: readFileSync(p === "-" ? 0 : p, "utf8") };
    } catch (err) {
      throw new ConfigError(`--identity ${p} cannot be read: ${err instanceof Error ? err.message : String(err)}`, { field: "identity" });
    }
  });
}

/**
 * Parses identities: an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments), or an armored
 * OpenPGP private key, unlocked with `passphrase` when it is protected. Every secret is registered
 * for redaction at once.
 */
export async function loadIdentities(sources: readonly IdentitySource[], passphrase?: string): Promise<Identities> {
  registerSecret(passphrase);
  const out: Identities = { age: [], pgp: [] };
  for (const s of sources) {
    registerSecret(s.text);
    if (s.text.includes("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
      out.pgp.push(await unlockPgp(s, passphrase));
      continue;
    }
    const secrets = s.text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    if (!secrets.length || secrets.some((l) => !l.startsWith("AGE-SECRET-KEY-"))) {
      throw new ConfigError(`identity ${s.name}: neither an age identity file (AGE-SECRET-KEY-1... lines) nor an armored OpenPGP private key`, { field: "identity" });
    }
    const { identityToRecipient } = await import("age-encryption");
    for (const secret of secrets) {
      registerSecret(secret);
      let recipient: string;
      try {
        recipient = await identityToRecipient(secret);
      } catch {
        throw new ConfigError(`identity ${s.name}: holds a malformed age secret key`, { field: "identity" });
      }
      out.age.push({ secret, recipient });
    }
  }
  return out;
}

async function unlockPgp(s: IdentitySource, passphrase: string | undefined): Promise<Identities["pgp"][number]> {
  const openpgp = await import("openpgp");
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: s.text });
  } catch (err) {
    throw new ConfigError(`identity ${s.name}: the OpenPGP private key cannot be read: ${err instanceof Error ? err.message : String(err)}`, { field: "identity" });
  }
  if (!key.isDecrypted()) {
    if (!passphrase) throw new ConfigError(`identity ${s.name}: the OpenPGP private key is passphrase-protected; set ${IDENTITY_PASSPHRASE_ENV}`, { field: "identity" });
    try {
      key = await openpgp.decryptKey({ privateKey: key, passphrase });
    } catch {
      throw new ConfigError(`identity ${s.name}: ${IDENTITY_PASSPHRASE_ENV} does not unlock the OpenPGP private key ${key.getFingerprint()}`, { field: "identity" });
    }
  }
  return { key: key as unknown as PgpPrivateKey, fingerprint: key.getFingerprint() };
}

/**
 * Before anything is downloaded or changed: an encrypted object needs an identity that is one of
 * its recipients. Missing or not matching: ConfigError (exit 2), naming who can decrypt it.
 */
export function requireIdentityFor(info: EncryptionInfo, ids: Identities | undefined, what: string, setting = "--identity FILE"): void {
  const who = `${info.format} recipients ${info.recipients.join(", ")}`;
  if (!ids || (!ids.age.length && !ids.pgp.length)) {
    throw new ConfigError(`${what} is encrypted (${who}): give ${setting} (an age identity file or an armored OpenPGP private key). Nothing was changed.`, {
      field: "identity",
      stage: "preflight",
    });
  }
  const mine = info.format === "age" ? ids.age.map((a) => a.recipient) : ids.pgp.map((p) => p.fingerprint);
  if (!mine.some((r) => info.recipients.includes(r))) {
    throw new ConfigError(
      `${what} is encrypted for ${who}; none of the identities given is one of them (theirs: ${mine.join(", ") || `no ${info.format} identity`}). Nothing was changed.`,
      { field: "identity", stage: "preflight" },
    );
  }
}

/** Turns a ciphertext web stream into the plaintext web stream, chunk by chunk. */
export async function decryptWeb(info: EncryptionInfo, ids: Identities, cipher: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
  if (info.format === "age") {
    const { ageDecrypt } = await import("./age-stream.js");
    return ageDecrypt(
      ids.age.map((a) => a.secret),
      cipher,
    );
  }
  const keys = ids.pgp.map((p) => p.key as unknown as openpgp.PrivateKey);
  // The shape we write is read with node:crypto for the bulk; any other goes to OpenPGP.js whole.
  const { pgpDecrypt } = await import("./openpgp-read.js");
  return pgpDecrypt(keys, cipher, async (whole) => {
    const pgp = await import("openpgp");
    const message = await pgp.readMessage({ binaryMessage: whole });
    // Streaming without buffering the whole plaintext: OpenPGP.js then checks the message's
    // integrity only at its end. Safe here: every consumer hashes the plaintext against the
    // manifest (and a failed check fails the pass) before anything uses it.
    const { data } = await pgp.decrypt({ message, decryptionKeys: keys, format: "binary", config: { allowUnauthenticatedStream: true } });
    return data as ReadableStream<Uint8Array>;
  });
}
