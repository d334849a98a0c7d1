import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Encryptor } from "../crypto/encryptor.js";
import { OperationError } from "../errors.js";
import { tarStream } from "../lazy-modules.js";
import type { SnapshotManifest } from "../snapshot/manifest.js";
import type { ObjectStore, WrittenObject } from "../storage/object-store.js";
import { StagePipeline, type Stage } from "../backup/pipeline.js";
import { EncryptionStage } from "../backup/stages/encryption.js";
import { HashingStage } from "../backup/stages/hashing.js";
import { UploadStage } from "../backup/stages/upload.js";
import { archiveName, type CollectedFile } from "./collect.js";

/** A tar of the files, read one file at a time; each file must still be what the scan saw. */
function tarOf(files: readonly CollectedFile[]): Readable {
  const pack = tarStream().pack();
  void (async () => {
    for (const f of files) {
      const hash = createHash("sha256");
      const entry = pack.entry({ name: archiveName(f.path), size: f.size, mode: f.mode, type: "file" });
      const source = createReadStream(f.path);
      source.on("data", (c) => hash.update(c as Buffer));
      await pipeline(source, entry);
      // The secret scan and the manifest went by what was read first; a file that changed since is not that file.
      if (hash.digest("hex") !== f.sha256) throw new OperationError(`files: ${f.path} changed during the backup; run it again`, { stage: "files" });
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err instanceof Error ? err : new Error(String(err))));
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

export interface StoreFilesOptions {
  /** The snapshot's store: the archive goes beside the snapshot, under the store's encryption settings. */
  store: ObjectStore;
  key: string;
  files: readonly CollectedFile[];
  encryptor?: Encryptor;
  partSize: number;
  signal?: AbortSignal;
  /** Told of the object as soon as it exists (a later failure must remove it). */
  onWritten: (o: WrittenObject) => void;
}

/**
 * Stores the files archive beside the snapshot in one streamed pass, like the snapshot: tar →
 * (encryption →) upload, with its SHA-256 as stored and, when encrypted, before. Returns the
 * manifest's `files` section. A failed upload leaves no unfinished upload behind.
 */
export async function storeFilesArchive(o: StoreFilesOptions): Promise<NonNullable<SnapshotManifest["files"]>> {
  const pass = new StagePipeline();
  const onAbort = () => pass.fail("files", o.signal?.reason ?? new Error("aborted"));
  o.signal?.addEventListener("abort", onAbort, { once: true });
  const plain = new HashingStage();
  const stored = o.encryptor ? new HashingStage() : undefined;
  const upload = new UploadStage({
    store: o.store,
    key: o.key,
    contentType: o.encryptor ? "application/octet-stream" : "application/x-tar",
    partSize: o.partSize,
    queueSize: 1,
    signal: pass.signal,
    gate: () => Promise.resolve(),
  });
  const stages: Stage[] = [plain, o.encryptor ? new EncryptionStage(o.encryptor, [stored!, upload]) : upload];
  try {
    await pass.run({ name: "files", stream: tarOf(o.files) }, stages);
  } catch (err) {
    await o.store.abortUploads(o.key, { deadlineMs: 10_000, own: upload.upload.ownUploads() });
    throw pass.fail("files", err);
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
    pass.close();
  }
  o.onWritten({ key: o.key, version: upload.result?.version, etag: upload.result?.etag });
  const asStored = stored ?? plain;
  return {
    key: o.key,
    bytes: asStored.bytes,
    sha256: asStored.sha256,
    ...(stored ? { plaintext: { sha256: plain.sha256, bytes: plain.bytes } } : {}),
    entries: o.files.map((f) => ({ path: f.path, size: f.size, mode: f.mode, sha256: f.sha256, secret: f.secret })),
  };
}
