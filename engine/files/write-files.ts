import { createHash } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { dirname, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract } from "tar-stream";
import { decryptingStream } from "../crypto/decrypt-stream.js";
import { requireIdentityFor, type Identities } from "../crypto/identities.js";
import { ConfigError, IntegrityError } from "../errors.js";
import type { SnapshotManifest } from "../snapshot/manifest.js";
import type { SnapshotStore, StoredSnapshot } from "../snapshot/store.js";
import { archiveName } from "./collect.js";

export type FilesSection = NonNullable<SnapshotManifest["files"]>;
export type FileEntry = FilesSection["entries"][number];

/** The files archive's section of a snapshot's manifest; a clear error when the backup had none. */
export function filesOf(snapshot: StoredSnapshot): FilesSection {
  const files = snapshot.manifest?.files;
  if (!files) throw new ConfigError(`s3://${snapshot.bucket}/${snapshot.key} has no configuration files (its policy had no 'files' section)`, { field: "ref" });
  return files;
}

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
 * downloaded, decrypted when encrypted, every file checked against the manifest's SHA-256 and the
 * whole object against its digest. Keys get 0600 (never more open), created parent folders 0700.
 * An existing file is refused before anything is written, unless `force`.
 */
export async function writeFilesOut(store: SnapshotStore, snapshot: StoredSnapshot, opts: { out: string; identities?: Identities; force?: boolean }): Promise<WriteFilesReport> {
  const files = filesOf(snapshot);
  const where = `s3://${snapshot.bucket}/${files.key}`;
  const enc = snapshot.manifest!.encryption;
  if (enc) requireIdentityFor(enc, opts.identities, where);
  const byName = new Map(files.entries.map((e) => [archiveName(e.path), e]));
  const targets = files.entries.map((e) => ({ e, to: outputPath(opts.out, e.path) }));
  const existing = targets.filter((t) => existsSync(t.to)).map((t) => t.to);
  if (existing.length && !opts.force) {
    throw new ConfigError(`refusing to overwrite ${existing.join(", ")}; give --force to replace ${existing.length === 1 ? "it" : "them"}. Nothing was written.`, {
      field: "force",
    });
  }
  const { body } = await store.openSnapshot(files.key);
  let stream = body;
  let cipher: Awaited<ReturnType<typeof decryptingStream>>["stored"] | undefined;
  if (enc) {
    const d = await decryptingStream(enc, opts.identities!, body, where);
    stream = d.plain;
    cipher = d.stored;
  }
  const plainHash = createHash("sha256");
  let plainBytes = 0;
  const tally = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of src) {
      plainHash.update(c);
      plainBytes += c.length;
      yield c;
    }
  };
  const written: WriteFilesReport["written"] = [];
  const tar = extract();
  tar.on("entry", (header, entryStream, next) => {
    const e = byName.get(header.name);
    const done = (err?: unknown) => next(err as Error | undefined);
    if (!e) return done(new IntegrityError(`${where} holds ${header.name}, which its manifest does not list`, { stage: "files" }));
    void writeEntry(e, outputPath(opts.out, e.path), entryStream as unknown as Readable).then((w) => {
      written.push(w);
      done();
    }, done);
  });
  await pipeline(stream, tally, tar);
  const stored = cipher ? { sha256: cipher.sha256(), bytes: cipher.bytes } : { sha256: plainHash.digest("hex"), bytes: plainBytes };
  const problems: string[] = [];
  if (stored.sha256 !== files.sha256 || stored.bytes !== files.bytes) problems.push(`the object's sha256/size ${stored.sha256}/${stored.bytes} differ from the manifest's`);
  if (cipher && files.plaintext && plainHash.digest("hex") !== files.plaintext.sha256) problems.push("the decrypted archive differs from the manifest's");
  const missing = files.entries.filter((e) => !written.some((w) => w.path === e.path)).map((e) => e.path);
  if (missing.length) problems.push(`missing from the archive: ${missing.join(", ")}`);
  if (problems.length) throw new IntegrityError(`${where} does not match its manifest: ${problems.join("; ")}`, { stage: "files" });
  return { out: resolve(opts.out), written };
}

async function writeEntry(e: FileEntry, to: string, content: Readable): Promise<WriteFilesReport["written"][number]> {
  await mkdir(dirname(to), { recursive: true, mode: 0o700 });
  const mode = e.secret ? e.mode & 0o600 : e.mode & 0o777;
  const hash = createHash("sha256");
  let size = 0;
  await pipeline(
    content,
    async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        hash.update(c);
        size += c.length;
        yield c;
      }
    },
    createWriteStream(to, { mode: 0o600 }),
  );
  // The mode of an existing file (--force) is not changed by opening it: set it explicitly.
  await chmod(to, mode);
  const sha256 = hash.digest("hex");
  if (sha256 !== e.sha256 || size !== e.size) throw new IntegrityError(`${e.path}: restored bytes (sha256 ${sha256}) differ from the manifest's ${e.sha256}`, { stage: "files" });
  return { path: e.path, to, size, mode: `0${mode.toString(8)}` };
}
