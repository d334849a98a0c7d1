import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import type { Identities } from "../crypto/identities.js";
import { ConfigError, IntegrityError, throwIfInterrupted } from "../errors.js";
import type { SnapshotStore, StoredSnapshot } from "../catalogue/snapshot-store.js";
import { archiveName } from "./collect.js";
import { filesOf, readVerifiedFiles, restoredMode } from "./read-files.js";

/** Where an archived file goes under `out`: its original absolute path below `out`, never outside it. */
export function outputPath(out: string, path: string): string {
  const root = resolve(out);
  const target = resolve(root, archiveName(path));
  const rel = relative(root, target);
  if (!rel || rel.startsWith("..") || rel.split(sep).includes("..")) throw new IntegrityError(`files archive entry ${path} would be written outside ${root}`, { stage: "files" });
  return target;
}

export interface WriteFilesReport {
  out: string;
  written: { path: string; to: string; size: number; mode: string }[];
}

/**
 * Writes a snapshot's configuration files under `out` (each at its original path below it):
 * downloaded, decrypted when encrypted, and checked whole against the manifest (readVerifiedFiles)
 * before the first file is written. Keys get 0600 (never more open), created parent folders 0700.
 * An existing file is refused before anything is written, unless `force`. Every file is written
 * under a temporary name beside its target and renamed into place only once all are written, so
 * a failure or an interruption (`signal`) leaves no file half-written under its final name.
 */
export async function writeFilesOut(
  store: SnapshotStore,
  snapshot: StoredSnapshot,
  opts: { out: string; identities?: Identities; force?: boolean; signal?: AbortSignal },
): Promise<WriteFilesReport> {
  const targets = filesOf(snapshot).entries.map((e) => outputPath(opts.out, e.path));
  const existing = targets.filter((t) => existsSync(t));
  if (existing.length && !opts.force) {
    throw new ConfigError(`refusing to overwrite ${existing.join(", ")}; give --force to replace ${existing.length === 1 ? "it" : "them"}. Nothing was written.`, {
      field: "force",
    });
  }
  const files = await readVerifiedFiles(store, snapshot, opts.identities, opts.signal);
  const written: WriteFilesReport["written"] = [];
  const staged: { temp: string; to: string }[] = [];
  try {
    for (const { entry, data } of files) {
      throwIfInterrupted(opts.signal, "while writing the files (none was put under its final name)", "files");
      const to = outputPath(opts.out, entry.path);
      const mode = restoredMode(entry);
      await mkdir(dirname(to), { recursive: true, mode: 0o700 });
      const temp = join(dirname(to), `.${basename(to)}.vrb-${randomBytes(4).toString("hex")}`);
      staged.push({ temp, to });
      await writeFile(temp, data, { mode: 0o600, flag: "wx" });
      await chmod(temp, mode);
      written.push({ path: entry.path, to, size: data.length, mode: `0${mode.toString(8)}` });
    }
    throwIfInterrupted(opts.signal, "while writing the files (none was put under its final name)", "files");
    for (let next = staged[0]; next; next = staged[0]) {
      await rename(next.temp, next.to);
      staged.shift();
    }
  } finally {
    await Promise.all(staged.map((s) => rm(s.temp, { force: true })));
  }
  return { out: resolve(opts.out), written };
}
