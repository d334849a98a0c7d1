import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, relative, resolve, sep } from "node:path";
import type { Identities } from "../crypto/identities.js";
import { ConfigError, IntegrityError } from "../errors.js";
import type { SnapshotStore, StoredSnapshot } from "../snapshot/store.js";
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
 * An existing file is refused before anything is written, unless `force`.
 */
export async function writeFilesOut(store: SnapshotStore, snapshot: StoredSnapshot, opts: { out: string; identities?: Identities; force?: boolean }): Promise<WriteFilesReport> {
  const targets = filesOf(snapshot).entries.map((e) => outputPath(opts.out, e.path));
  const existing = targets.filter((t) => existsSync(t));
  if (existing.length && !opts.force) {
    throw new ConfigError(`refusing to overwrite ${existing.join(", ")}; give --force to replace ${existing.length === 1 ? "it" : "them"}. Nothing was written.`, {
      field: "force",
    });
  }
  const files = await readVerifiedFiles(store, snapshot, opts.identities);
  const written: WriteFilesReport["written"] = [];
  for (const { entry, data } of files) {
    const to = outputPath(opts.out, entry.path);
    const mode = restoredMode(entry);
    await mkdir(dirname(to), { recursive: true, mode: 0o700 });
    await writeFile(to, data, { mode: 0o600 });
    // The mode of an existing file (--force) is not changed by opening it: set it explicitly.
    await chmod(to, mode);
    written.push({ path: entry.path, to, size: data.length, mode: `0${mode.toString(8)}` });
  }
  return { out: resolve(opts.out), written };
}
