import { createDecipheriv } from "node:crypto";
import { shamirCombine, ShamirShareError } from "../crypto/shamir.js";
import { ConfigError } from "../errors.js";
import type { ArchiveEntryObserver } from "../snapshot/archive.js";
import { StateBinParser } from "../snapshot/inventory/state-bin.js";
import type { RestoreKeys } from "./keys.js";

/**
 * Proves a Shamir seal's unseal keys against the snapshot itself, offline, before any node is
 * touched (checked on OpenBao 2.7.2; Vault writes the same barrier format):
 *
 * - `core/seal-config` (plain JSON) says how many shares the cluster needs (`secret_threshold`);
 * - the shares combine (engine/crypto/shamir.ts) to the key that encrypts
 *   `core/hsm/barrier-unseal-keys`: a BlobInfo protobuf whose field 1 is a 12-byte nonce and the
 *   AES-256-GCM ciphertext and tag (no AAD); it opens to a JSON list of base64 root keys;
 * - a root key opens `core/keyring`, a barrier entry: 4-byte term, version byte (2: the entry's
 *   path is the AAD; 1: none), 12-byte nonce, AES-256-GCM ciphertext and tag; the keyring is JSON.
 *
 * Wrong shares fail GCM's authentication at the first step. A cluster from before stored keys
 * (no `core/hsm/barrier-unseal-keys`) has the combined key as its root key: it must open the
 * keyring directly.
 */
export const SEAL_CONFIG_KEY = "core/seal-config";
export const STORED_KEYS_KEY = "core/hsm/barrier-unseal-keys";
export const KEYRING_KEY = "core/keyring";
const KEPT = new Set([SEAL_CONFIG_KEY, STORED_KEYS_KEY, KEYRING_KEY]);
const STATE_BIN = "state.bin";

/** Keeps the seal's three entries of `state.bin` as the archive check reads it (hand `observe` to the inspection). */
export class SealEntries {
  readonly values = new Map<string, Buffer>();
  problem: string | undefined;
  seen = false;
  private readonly parser = new StateBinParser(
    (e) => {
      if (e.value) this.values.set(e.key, e.value);
    },
    (key) => KEPT.has(key),
  );

  readonly observe = (name: string): ArchiveEntryObserver | undefined => {
    if (name !== STATE_BIN) return undefined;
    this.seen = true;
    const guard = (f: () => void) => {
      if (this.problem) return;
      try {
        f();
      } catch (err) {
        this.problem = err instanceof Error ? err.message : String(err);
      }
    };
    return { data: (chunk) => guard(() => this.parser.write(chunk)), end: () => guard(() => void this.parser.end()) };
  };
}

/** What the proof found; `checked: false` says why it could not be made (the restore goes on as before). */
export type KeyProof = { checked: true; sharesUsed: number; threshold?: number } | { checked: false; why: string };

function gcmOpen(key: Buffer, nonce: Buffer, sealed: Buffer, aad?: Buffer): Buffer | undefined {
  if (sealed.length < 16) return undefined;
  try {
    const d = createDecipheriv("aes-256-gcm", key, nonce);
    if (aad) d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
  } catch {
    return undefined;
  }
}

/** The fields of a protobuf message (varints as numbers, length-delimited as bytes), or undefined when it is not one. */
function protobufFields(msg: Buffer): { field: number; bytes?: Buffer; varint?: number }[] | undefined {
  const out: { field: number; bytes?: Buffer; varint?: number }[] = [];
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= msg.length || shift > 49) throw new RangeError("truncated varint");
      const b = msg[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return v;
    }
  };
  try {
    while (i < msg.length) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wire = tag % 8;
      if (field === 0) return undefined;
      if (wire === 0) out.push({ field, varint: varint() });
      else if (wire === 1 || wire === 5) i += wire === 1 ? 8 : 4;
      else if (wire === 2) {
        const len = varint();
        if (i + len > msg.length) return undefined;
        out.push({ field, bytes: msg.subarray(i, i + len) });
        i += len;
      } else return undefined;
    }
  } catch {
    return undefined;
  }
  return i === msg.length ? out : undefined;
}

/**
 * The sealed blobs (12-byte nonce + AES-GCM ciphertext and tag) a stored-keys entry may hold: a
 * go-kms-wrapping BlobInfo (field 1 ciphertext, field 2 iv; OpenBao 2.x), or Vault's MultiWrapValue
 * (field 1 generation, field 2 repeated BlobInfo slots). With a separate 12-byte iv the ciphertext
 * is tried both with and without it. Empty when the entry has neither shape.
 */
function sealedBlobs(entry: Buffer): { nonce: Buffer; sealed: Buffer }[] {
  const fromBlobInfo = (fields: { field: number; bytes?: Buffer }[]) => {
    const ct = fields.find((f) => f.field === 1 && f.bytes)?.bytes;
    const iv = fields.find((f) => f.field === 2 && f.bytes)?.bytes;
    const out: { nonce: Buffer; sealed: Buffer }[] = [];
    if (ct && ct.length >= 12 + 16) out.push({ nonce: ct.subarray(0, 12), sealed: ct.subarray(12) });
    if (ct && iv?.length === 12 && ct.length >= 16) out.push({ nonce: iv, sealed: ct });
    return out;
  };
  const top = protobufFields(entry);
  if (!top) return [];
  const blobs = fromBlobInfo(top);
  // MultiWrapValue: every slot a BlobInfo.
  if (!top.some((f) => f.field === 1 && f.bytes)) {
    for (const slot of top.filter((f) => f.field === 2 && f.bytes)) {
      const fields = protobufFields(slot.bytes!);
      if (fields) blobs.push(...fromBlobInfo(fields));
    }
  }
  return blobs;
}

/** Opens the barrier entry `core/keyring` with `rootKey`; true when it authenticates and is JSON. */
function opensKeyring(rootKey: Buffer, entry: Buffer): boolean {
  if (rootKey.length !== 32 || entry.length < 4 + 1 + 12 + 16) return false;
  const version = entry[4];
  if (version !== 1 && version !== 2) return false;
  const plain = gcmOpen(rootKey, entry.subarray(5, 17), entry.subarray(17), version === 2 ? Buffer.from(KEYRING_KEY) : undefined);
  if (!plain) return false;
  try {
    JSON.parse(plain.toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

function sealThreshold(config: Buffer | undefined): number | undefined {
  if (!config) return undefined;
  try {
    const c = JSON.parse(config.toString("utf8")) as { secret_threshold?: unknown; type?: unknown };
    return typeof c.secret_threshold === "number" && c.secret_threshold > 0 ? c.secret_threshold : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Proves `keys` (the ORIGINAL cluster's unseal keys) open the snapshot's root key and keyring.
 * Throws ConfigError (exit 2) naming the keys file when they are too few or do not open it;
 * returns `checked: false` when the snapshot does not hold what the proof needs.
 */
export function proveUnsealKeys(entries: SealEntries, keys: RestoreKeys, snapshotLabel: string): KeyProof {
  const source = keys.source ? `keys file ${keys.source}` : "the unseal keys given";
  const fix = `use the unseal keys of the cluster that took it (${snapshotLabel}). Nothing was changed.`;
  if (entries.problem) return { checked: false, why: `state.bin could not be read (${entries.problem})` };
  if (!entries.seen) return { checked: false, why: "the archive has no state.bin" };
  const keyring = entries.values.get(KEYRING_KEY);
  if (!keyring) return { checked: false, why: `the snapshot has no ${KEYRING_KEY}` };
  const threshold = sealThreshold(entries.values.get(SEAL_CONFIG_KEY));
  if (threshold !== undefined && keys.keys.length < threshold) {
    throw new ConfigError(
      `${source} holds ${keys.keys.length} unseal key(s), but the snapshot's cluster needs ${threshold} (its seal configuration's threshold): add keys. Nothing was changed.`,
      { field: "keysFile", stage: "preflight" },
    );
  }
  const used = keys.keys.slice(0, threshold ?? keys.keys.length).map((k) => Buffer.from(k, "base64"));
  let kek: Buffer;
  try {
    // One share is the key itself (a cluster initialised with one share, threshold 1).
    kek = used.length === 1 ? used[0]! : shamirCombine(used);
  } catch (err) {
    const why = err instanceof ShamirShareError ? err.message : String(err);
    throw new ConfigError(`${source}: these keys are not shares of one key (${why}); ${fix}`, { field: "keysFile", stage: "preflight" });
  }
  const wrong = () =>
    new ConfigError(`${source}: these keys do not open this snapshot's root key; ${fix}`, {
      field: "keysFile",
      stage: "preflight",
    });
  if (kek.length !== 32) throw wrong();
  const stored = entries.values.get(STORED_KEYS_KEY);
  const rootKeys: Buffer[] = [];
  if (stored) {
    const blobs = sealedBlobs(stored);
    if (!blobs.length) return { checked: false, why: `${STORED_KEYS_KEY} is not in a format this version knows` };
    const plain = blobs.map((b) => gcmOpen(kek, b.nonce, b.sealed)).find((p) => p !== undefined);
    if (!plain) throw wrong();
    try {
      const list = JSON.parse(plain.toString("utf8")) as unknown;
      if (Array.isArray(list)) for (const k of list) if (typeof k === "string") rootKeys.push(Buffer.from(k, "base64"));
    } catch {
      return { checked: false, why: `${STORED_KEYS_KEY} opened but does not hold a JSON list of keys` };
    }
  } else {
    // Before stored keys, the combined key was the root key.
    rootKeys.push(kek);
  }
  if (!rootKeys.some((k) => opensKeyring(k, keyring))) {
    // The stored keys opened: the shares are right, whatever the keyring's format says.
    if (stored) return { checked: false, why: `the root key opened but ${KEYRING_KEY} is not in the expected format` };
    throw wrong();
  }
  return { checked: true, sharesUsed: used.length, ...(threshold !== undefined ? { threshold } : {}) };
}
