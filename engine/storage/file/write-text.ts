import { link, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { StoreConflictError } from "../errors.js";
import { inDir, syncDir } from "./durable.js";
import { FILE_MODE, etagOf } from "./etag.js";
import { errnoOf, isMissing } from "./fs-errors.js";
import { lockName, uploadName } from "./keys.js";
import { withFileLock } from "./lock.js";

// A small object written whole: into a temporary file in the same directory, fsynced, then made
// visible in one atomic step. ifAbsent links the temporary to the final name (link fails with
// EEXIST when the name exists: atomic, even on NFS); ifMatch and plain writes rename it into
// place under the file's lock, after comparing the etag, so a lost race is a StoreConflictError.

export interface TextWrite {
  root: string;
  file: string;
  key: string;
  url: string;
  text: string;
  ifAbsent?: boolean;
  ifMatch?: string;
  signal?: AbortSignal;
}

/** Writes `text` to a fresh temporary file beside `file` and fsyncs it; returns its path. */
async function writeTemp(root: string, file: string, text: string): Promise<string> {
  const dir = dirname(file);
  const temp = join(dir, uploadName(basename(file)));
  const fh = await inDir(root, dir, () => open(temp, "wx", FILE_MODE));
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return temp;
}

/** Writes the text and returns the new file's etag. */
export async function writeTextFile(w: TextWrite): Promise<string> {
  const dir = dirname(w.file);
  const temp = await writeTemp(w.root, w.file, w.text);
  try {
    if (w.ifAbsent) {
      try {
        await link(temp, w.file);
      } catch (err) {
        if (errnoOf(err) === "EEXIST") throw new StoreConflictError(`${w.url} already exists (written by another run since it was read)`);
        throw err;
      }
      await unlink(temp);
      await syncDir(dir);
      return etagOf(await stat(w.file, { bigint: true }));
    }
    const lockPath = join(dir, lockName(basename(w.file)));
    return await withFileLock(
      lockPath,
      async () => {
        if (w.ifMatch !== undefined) {
          const current = await stat(w.file, { bigint: true }).catch((err: unknown) => {
            if (isMissing(err)) return undefined;
            throw err;
          });
          if (!current || etagOf(current) !== w.ifMatch) {
            throw new StoreConflictError(`${w.url} ${current ? "changed" : "was deleted"} since it was read (etag ${w.ifMatch})`);
          }
        }
        const etag = etagOf(await stat(temp, { bigint: true }));
        await rename(temp, w.file);
        await syncDir(dir);
        return etag;
      },
      { signal: w.signal },
    );
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
