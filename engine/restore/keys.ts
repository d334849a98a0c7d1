import { existsSync, readFileSync } from "node:fs";
import { ConfigError } from "../errors.js";
import type { LocalClusterKeys } from "../throwaway/nodes.js";
import { registerSecret } from "../redact.js";

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * What a keys file holds. A Shamir cluster's `operator init -format=json` has `unseal_keys_b64`;
 * an auto-unseal cluster's (transit, cloud KMS, PKCS#11) has `recovery_keys_b64` and an empty
 * unseal list. A plain file of one key per line says nothing about which they are: `kind` is
 * then what the caller declared (`--unseal-keys-file` / `--recovery-keys-file`), or `undefined`.
 */
export interface RestoreKeys {
  kind?: "unseal" | "recovery";
  keys: string[];
  /** How many keys the original cluster needs (from init JSON), when the file says. */
  threshold?: number;
  /** The original cluster's root token from init JSON: often revoked since, so only ever tried. */
  rootToken?: string;
  /** The file the keys came from (named in messages; never the keys themselves). */
  source?: string;
}

type InitJson = {
  unseal_keys_b64?: unknown;
  keys_base64?: unknown;
  recovery_keys_b64?: unknown;
  recovery_keys_base64?: unknown;
  unseal_threshold?: unknown;
  recovery_keys_threshold?: unknown;
  root_token?: unknown;
};

const stringList = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((k): k is string => typeof k === "string") ? v : undefined);

function fromJson(trimmed: string, source: string): RestoreKeys {
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch {
    throw new ConfigError(`${source}: looks like JSON but does not parse; give the output of 'bao operator init -format=json' or one key per line`, {
      field: "keysFile",
    });
  }
  if (Array.isArray(doc)) {
    const list = stringList(doc);
    if (!list) throw new ConfigError(`${source}: a JSON list of keys must hold only strings`, { field: "keysFile" });
    return { keys: list };
  }
  const d = (doc ?? {}) as InitJson;
  const rootToken = typeof d.root_token === "string" && d.root_token ? d.root_token : undefined;
  const unseal = stringList(d.unseal_keys_b64) ?? stringList(d.keys_base64) ?? [];
  const recovery = stringList(d.recovery_keys_b64) ?? stringList(d.recovery_keys_base64) ?? [];
  const threshold = (v: unknown) => (typeof v === "number" && v > 0 ? v : undefined);
  if (unseal.length > 0) return { kind: "unseal", keys: unseal, threshold: threshold(d.unseal_threshold), rootToken };
  if (recovery.length > 0) return { kind: "recovery", keys: recovery, threshold: threshold(d.recovery_keys_threshold), rootToken };
  throw new ConfigError(
    `${source}: JSON has neither 'unseal_keys_b64' (Shamir seal) nor 'recovery_keys_b64' (auto-unseal seal) as a list of strings, as printed by 'bao operator init -format=json'`,
    { field: "keysFile" },
  );
}

/**
 * Keys from the text of a keys file: operator-init JSON (unseal or recovery keys, and the root
 * token if it is there), or one base64 key per line (blank lines and `#` comments ignored). Every
 * key and the token are registered as secrets before anything else can print them.
 */
export function parseKeysFile(text: string, source: string, declared?: "unseal" | "recovery"): RestoreKeys {
  const trimmed = text.trim();
  const parsed: RestoreKeys =
    trimmed.startsWith("{") || trimmed.startsWith("[")
      ? fromJson(trimmed, source)
      : {
          keys: trimmed
            .split(/\r?\n/)
            .map((l) => l.trim())
            .filter((l) => l.length > 0 && !l.startsWith("#")),
        };
  const keys = parsed.keys.map((k) => k.trim());
  keys.forEach(registerSecret);
  registerSecret(parsed.rootToken);
  if (keys.length === 0) throw new ConfigError(`${source}: no keys found; one base64 key per line, or operator-init JSON`, { field: "keysFile" });
  keys.forEach((k, i) => {
    // Never echo the key itself: only its position.
    if (!BASE64.test(k)) {
      throw new ConfigError(`${source}: key #${i + 1} is not base64 (use the '*_keys_b64' values, not the hex ones)`, { field: "keysFile" });
    }
  });
  if (new Set(keys).size !== keys.length) throw new ConfigError(`${source}: the same key appears twice`, { field: "keysFile" });
  if (parsed.threshold !== undefined && keys.length < parsed.threshold) {
    throw new ConfigError(`${source}: holds ${keys.length} key(s) but the cluster needs ${parsed.threshold} (its threshold); add keys`, { field: "keysFile" });
  }
  return { ...parsed, keys, kind: parsed.kind ?? declared };
}

/** The keys of a one-kind file as a plain list (unseal or recovery keys alike). */
export function parseUnsealKeys(text: string, source: string): string[] {
  return parseKeysFile(text, source).keys;
}

export function loadKeysFile(path: string, declared?: "unseal" | "recovery"): RestoreKeys {
  if (!existsSync(path)) {
    throw new ConfigError(`keys file ${path} does not exist; give the original cluster's unseal or recovery keys (operator-init JSON or one per line)`, {
      field: "keysFile",
    });
  }
  return { ...parseKeysFile(readFileSync(path, "utf8"), path, declared), source: path };
}

export function loadUnsealKeysFile(path: string): string[] {
  return loadKeysFile(path, "unseal").keys;
}

/** The keys of a local environment's cluster, as its operator-init JSON would give them. */
export function localClusterRestoreKeys(keys: LocalClusterKeys & { recoveryKeysB64?: string[] }): RestoreKeys {
  const recovery = keys.recoveryKeysB64 ?? [];
  return recovery.length > 0
    ? { kind: "recovery", keys: recovery, threshold: keys.threshold, rootToken: keys.rootToken }
    : { kind: "unseal", keys: keys.unsealKeysB64, threshold: keys.threshold, rootToken: keys.rootToken };
}
