import { randomBytes } from "node:crypto";
import { join, posix } from "node:path";
import { ConfigError } from "../../errors.js";

// How object keys map to files under the store's directory, and the names the store keeps for
// itself beside them: a temporary upload `.<name>.vrb-upload-<random>` and a writer's lock
// `.<name>.vrb-lock`. Both start with '.' and never list as objects.

const UPLOAD_MARK = ".vrb-upload-";
const LOCK_SUFFIX = ".vrb-lock";

/** Refuses a key that could leave the directory or collide with the store's own files. */
export function checkKey(key: string): void {
  const bad = (why: string) => new ConfigError(`object key '${key}' ${why}`, { field: "key" });
  if (key === "" || key.endsWith("/")) throw bad("must name a file (non-empty, not ending in '/')");
  if (key.startsWith("/")) throw bad("must be relative to the destination's path (no leading '/')");
  if (key.includes("\0") || key.includes("\\")) throw bad("must not contain NUL or '\\'");
  for (const segment of key.split("/")) {
    if (segment === "" || segment === "." || segment === "..") throw bad("must not contain empty, '.' or '..' segments");
    if (isInternalName(segment)) throw bad(`must not use the store's own names ('${UPLOAD_MARK}', '${LOCK_SUFFIX}')`);
  }
}

/** The file that holds `key` under `root`. */
export function pathOf(root: string, key: string): string {
  checkKey(key);
  return join(root, ...key.split("/"));
}

/** The directory part of a key ('' at the top) and its last segment. */
export function splitKey(key: string): { dir: string; base: string } {
  const at = key.lastIndexOf("/");
  return at < 0 ? { dir: "", base: key } : { dir: key.slice(0, at), base: key.slice(at + 1) };
}

export function isInternalName(name: string): boolean {
  return name.startsWith(".") && (name.includes(UPLOAD_MARK) || name.endsWith(LOCK_SUFFIX));
}

/** A fresh temporary name for an upload of the file `base` (same directory, so the rename is atomic). */
export function uploadName(base: string): string {
  return `.${base}${UPLOAD_MARK}${randomBytes(8).toString("hex")}`;
}

/** The file `base` a temporary upload name is for, or undefined when `name` is not one. */
export function uploadTarget(name: string): string | undefined {
  if (!name.startsWith(".")) return undefined;
  const at = name.lastIndexOf(UPLOAD_MARK);
  return at > 1 ? name.slice(1, at) : undefined;
}

export function lockName(base: string): string {
  return `.${base}${LOCK_SUFFIX}`;
}

/** `dir` + `name` as a key ('' dir: the top). */
export function joinKey(dir: string, name: string): string {
  return dir ? posix.join(dir, name) : name;
}
