import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { isMissing } from "./fs-errors.js";
import { isInternalName, joinKey, uploadTarget } from "./keys.js";

// Walks the directory tree under a key prefix in key order (S3's: a file `b.json` before the
// folder `b/`, which sorts as "b/"), so a listing can stop at a limit and still be a prefix of
// the full one.

export type Entry = { kind: "object"; key: string; path: string } | { kind: "upload"; key: string; id: string; path: string };

/** The directory a prefix starts in (as a key, '' for the top) and the start every name there must have. */
export function startOf(prefix: string): { dir: string; first: string } {
  const at = prefix.lastIndexOf("/");
  return at < 0 ? { dir: "", first: prefix } : { dir: prefix.slice(0, at), first: prefix.slice(at + 1) };
}

async function isDir(path: string, d: Dirent): Promise<boolean> {
  if (d.isDirectory()) return true;
  // A symbolic link to a folder is followed (an appliance may link shares); loops are the operator's.
  if (d.isSymbolicLink()) return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
  return false;
}

async function isFile(path: string, d: Dirent): Promise<boolean> {
  if (d.isFile()) return true;
  if (d.isSymbolicLink()) return (await stat(path).catch(() => undefined))?.isFile() ?? false;
  return false;
}

/** Sorted entries of one directory: [name, dirent] with folders sorting as "name/". Missing: none. */
async function entriesOf(path: string): Promise<Dirent[]> {
  try {
    const all = await readdir(path, { withFileTypes: true });
    const sortName = (d: Dirent) => (d.isDirectory() ? `${d.name}/` : d.name);
    return all.sort((a, b) => (sortName(a) < sortName(b) ? -1 : sortName(a) > sortName(b) ? 1 : 0));
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** Every object (and, when asked, every temporary upload) whose key starts with `prefix`, in key order. */
export async function* walk(root: string, prefix: string, opts: { uploads?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<Entry> {
  const { dir, first } = startOf(prefix);
  yield* walkDir(root, dir, first, opts);
}

async function* walkDir(root: string, dir: string, first: string, opts: { uploads?: boolean; signal?: AbortSignal }): AsyncGenerator<Entry> {
  const path = dir ? join(root, ...dir.split("/")) : root;
  for (const d of await entriesOf(path)) {
    opts.signal?.throwIfAborted();
    const child = join(path, d.name);
    if (isInternalName(d.name)) {
      const target = uploadTarget(d.name);
      if (opts.uploads && target !== undefined && target.startsWith(first) && d.isFile()) yield { kind: "upload", key: joinKey(dir, target), id: d.name, path: child };
      continue;
    }
    if (!d.name.startsWith(first)) continue;
    if (await isDir(child, d)) yield* walkDir(root, joinKey(dir, d.name), "", opts);
    else if (await isFile(child, d)) yield { kind: "object", key: joinKey(dir, d.name), path: child };
  }
}

/** True when the folder holds at least one object (S3 shows no folder that holds none). */
export async function holdsObject(path: string): Promise<boolean> {
  for (const d of await entriesOf(path)) {
    if (isInternalName(d.name)) continue;
    const child = join(path, d.name);
    if (await isFile(child, d)) return true;
    if ((await isDir(child, d)) && (await holdsObject(child))) return true;
  }
  return false;
}
