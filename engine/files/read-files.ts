import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { decryptingStream } from "../crypto/decrypt-stream.js";
import { requireIdentityFor, type Identities } from "../crypto/identities.js";
import { ConfigError, IntegrityError, interruption } from "../errors.js";
import { tarStream } from "../lazy-modules.js";
import type { SnapshotManifest } from "../snapshot/manifest.js";
import type { SnapshotStore, StoredSnapshot } from "../catalogue/snapshot-store.js";
import { archiveName } from "./collect.js";

export type FilesSection = NonNullable<SnapshotManifest["files"]>;
export type FileEntry = FilesSection["entries"][number];

/** The files archive's section of a snapshot's manifest; a clear error when the backup had none. */
export function filesOf(snapshot: StoredSnapshot): FilesSection {
  const files = snapshot.manifest?.files;
  if (!files) throw new ConfigError(`${snapshot.url} has no configuration files (its policy had no 'files' section)`, { field: "ref" });
  return files;
}

/** The mode a restored file gets: its original permission bits, keys never more open than 0600. */
export function restoredMode(e: FileEntry): number {
  return e.secret ? e.mode & 0o600 : e.mode & 0o777;
}

export interface VerifiedFile {
  entry: FileEntry;
  data: Buffer;
}

/**
 * Downloads a snapshot's files archive, decrypts it when encrypted, and checks it whole before
 * anything is handed out: the object against the manifest's digest and size, the decrypted
 * archive against its plaintext digest, every file against its entry (no file missing, none
 * extra). Configuration files are small; they are held in memory, never on disk. `signal` cancels
 * the download (an InterruptedError).
 */
export async function readVerifiedFiles(store: SnapshotStore, snapshot: StoredSnapshot, identities?: Identities, signal?: AbortSignal): Promise<VerifiedFile[]> {
  const files = filesOf(snapshot);
  const where = store.forSnapshot(snapshot).url(files.key);
  const enc = snapshot.manifest!.encryption;
  if (enc) requireIdentityFor(enc, identities, where);
  const byName = new Map(files.entries.map((e) => [archiveName(e.path), e]));
  if (signal?.aborted) throw interruption(signal, "before the files download", "files");
  // Whatever a cancelled download fails with (an aborted request, a destroyed stream), it was the interruption.
  const stopped = (err: unknown) => (signal?.aborted ? interruption(signal, "during the files download", "files") : err);
  const { body } = await store.openSnapshot(files.key, { signal }).catch((err: unknown) => {
    throw stopped(err);
  });
  let stream = body;
  let cipher: Awaited<ReturnType<typeof decryptingStream>>["stored"] | undefined;
  if (enc) {
    const d = await decryptingStream(enc, identities!, body, where);
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
  const read: VerifiedFile[] = [];
  const problems: string[] = [];
  const tar = tarStream().extract();
  tar.on("entry", (header, entryStream, next) => {
    const e = byName.get(header.name);
    if (!e) return next(new IntegrityError(`${where} holds ${header.name}, which its manifest does not list`, { stage: "files" }));
    const chunks: Buffer[] = [];
    entryStream.on("data", (c) => chunks.push(c as Buffer));
    entryStream.on("error", next);
    entryStream.on("end", () => {
      const data = Buffer.concat(chunks);
      const sha256 = createHash("sha256").update(data).digest("hex");
      if (sha256 !== e.sha256 || data.length !== e.size) problems.push(`${e.path}: its bytes (sha256 ${sha256}) differ from the manifest's ${e.sha256}`);
      read.push({ entry: e, data });
      next();
    });
  });
  await pipeline(stream, tally, tar, { signal }).catch((err: unknown) => {
    throw stopped(err);
  });
  const stored = cipher ? { sha256: cipher.sha256(), bytes: cipher.bytes } : { sha256: plainHash.digest("hex"), bytes: plainBytes };
  if (stored.sha256 !== files.sha256 || stored.bytes !== files.bytes) problems.unshift(`the object's sha256/size ${stored.sha256}/${stored.bytes} differ from the manifest's`);
  if (cipher && files.plaintext && plainHash.digest("hex") !== files.plaintext.sha256) problems.push("the decrypted archive differs from the manifest's");
  const missing = files.entries.filter((e) => !read.some((r) => r.entry.path === e.path)).map((e) => e.path);
  if (missing.length) problems.push(`missing from the archive: ${missing.join(", ")}`);
  if (problems.length) throw new IntegrityError(`${where} does not match its manifest: ${problems.join("; ")}`, { stage: "files" });
  return read;
}

/**
 * The verified files as a plain tar (entry names relative to `/`, as stored), with the modes a
 * restore gives them (restoredMode), owner root and `mtime` (the snapshot's time): what
 * `tar -x -p -C /` puts back on a node. The same files give the same bytes, run after run.
 */
export async function filesTar(files: readonly VerifiedFile[], mtime: Date): Promise<Buffer> {
  const p = tarStream().pack();
  for (const { entry, data } of files) p.entry({ name: archiveName(entry.path), size: data.length, mode: restoredMode(entry), type: "file", uid: 0, gid: 0, mtime }, data);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of Readable.from(p as AsyncIterable<Buffer>)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
