import { existsSync, readFileSync } from "node:fs";
import { ConfigError } from "../errors.js";
import { registerSecret } from "../redact.js";

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Unseal keys from the text of a keys file (DESIGN.md §3): the JSON that `operator init
 * -format=json` prints (`unseal_keys_b64`), or one base64 key per line (blank lines and `#`
 * comments ignored). Every key is registered as a secret before anything else can print it.
 */
export function parseUnsealKeys(text: string, source: string): string[] {
  const trimmed = text.trim();
  let keys: string[];
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch {
      throw new ConfigError(`${source}: looks like JSON but does not parse; give the output of 'bao operator init -format=json' or one key per line`, {
        field: "unsealKeys",
      });
    }
    const list = Array.isArray(doc) ? doc : (doc as { unseal_keys_b64?: unknown; keys_base64?: unknown }).unseal_keys_b64 ?? (doc as { keys_base64?: unknown }).keys_base64;
    if (!Array.isArray(list) || !list.every((k): k is string => typeof k === "string")) {
      throw new ConfigError(`${source}: JSON has no 'unseal_keys_b64' list of strings (as printed by 'bao operator init -format=json')`, {
        field: "unsealKeys",
      });
    }
    keys = list.map((k) => k.trim());
  } else {
    keys = trimmed
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.startsWith("#"));
  }
  keys.forEach(registerSecret);
  if (keys.length === 0) throw new ConfigError(`${source}: no unseal keys found; one base64 key per line, or operator-init JSON`, { field: "unsealKeys" });
  keys.forEach((k, i) => {
    // Never echo the key itself: only its position.
    if (!BASE64.test(k)) {
      throw new ConfigError(`${source}: key #${i + 1} is not base64 (unseal keys are the 'unseal_keys_b64' values, not the hex ones)`, {
        field: "unsealKeys",
      });
    }
  });
  if (new Set(keys).size !== keys.length) throw new ConfigError(`${source}: the same unseal key appears twice`, { field: "unsealKeys" });
  return keys;
}

export function loadUnsealKeysFile(path: string): string[] {
  if (!existsSync(path)) {
    throw new ConfigError(`unseal keys file ${path} does not exist; give --unseal-keys-file with the original cluster's keys`, { field: "unsealKeys" });
  }
  return parseUnsealKeys(readFileSync(path, "utf8"), path);
}
