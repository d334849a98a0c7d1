import { constants } from "node:fs";
import { mkdir, open, rmdir } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { isMissing } from "./fs-errors.js";

// The durability steps every write shares: a rename or link is only durable once the directory
// that holds the new entry is fsynced, and a directory under the store's path is created one level
// at a time so that a missing (unmounted) path is never created on the local disk by accident.

/** fsyncs a directory so that the entries renamed, linked or removed in it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems (and NFS servers) refuse fsync on a directory; their renames are durable on return.
    const code = (err as { code?: string }).code;
    if (code !== "EINVAL" && code !== "EBADF" && code !== "ENOTSUP") throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Creates the directories from `root` (which must exist: ENOENT when it does not) down to `dir`.
 * Never creates `root` itself: an NFS share that is not mounted must fail, not fill the local disk.
 */
export async function makeDirsUnder(root: string, dir: string): Promise<void> {
  const rel = relative(root, dir);
  if (!rel) return;
  let at = root;
  for (const part of rel.split(sep)) {
    at = join(at, part);
    try {
      await mkdir(at);
      await syncDir(dirname(at));
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
    }
  }
}

/**
 * Runs `create` (which makes a file in `dir`), creating the directories under `root` when they are
 * missing, and again when a concurrent delete removed an emptied directory in between.
 */
export async function inDir<T>(root: string, dir: string, create: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await create();
    } catch (err) {
      if (!isMissing(err) || attempt >= 3) throw err;
      await makeDirsUnder(root, dir);
    }
  }
}

/** Removes the directories that a delete left empty, from `dir` up to (not including) `root`, as S3 has no empty folders. */
export async function removeEmptyDirs(root: string, dir: string): Promise<void> {
  for (let at = dir; relative(root, at) && !relative(root, at).startsWith(".."); at = dirname(at)) {
    try {
      await rmdir(at);
    } catch {
      return; // ENOTEMPTY (or already gone): the folder still holds something
    }
  }
}
