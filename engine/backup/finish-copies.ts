import type { Encryptor } from "../crypto/encryptor.js";
import type { CollectedFile } from "../files/collect.js";
import { storeFilesArchive } from "../files/store-files.js";
import type { BackupPolicy } from "../policy.js";
import type { Progress } from "../progress.js";
import { cleanUpCopy, type CopyTarget } from "./copies.js";
import { checkStoredObject, kmsKeyOf, lockObject, writeManifest } from "./finish-steps.js";
import { filesKeyFor, manifestSchema, type SnapshotManifest } from "../snapshot/manifest.js";
import type { SnapshotPassResult } from "./snapshot-pass.js";

export interface FinishCopiesOptions {
  policy: BackupPolicy;
  stored: SnapshotPassResult;
  /** The primary's manifest: a copy's is the same facts with its own key, version, lock, encryption and files. */
  manifest: SnapshotManifest;
  files?: readonly CollectedFile[];
  encryptor?: Encryptor;
  partSize: number;
  progress: Progress;
}

/** What a copy's manifest says, once the copy is complete and checked. */
export interface FinishedCopy {
  manifestKey: string;
  manifest: SnapshotManifest;
}

/**
 * Finishes every live copy once the primary's manifest is stored, each on its own: read back,
 * files archive, lock (where its store can lock), its manifest last. A copy failing here is
 * detached and cleaned up; the others and the primary are not affected.
 */
export async function finishCopies(copies: readonly CopyTarget[], o: FinishCopiesOptions): Promise<Map<CopyTarget, FinishedCopy>> {
  const done = new Map<CopyTarget, FinishedCopy>();
  await Promise.all(
    copies.map(async (copy) => {
      if (copy.live) {
        try {
          done.set(copy, await finishCopy(copy, o));
          copy.written.length = 0;
          o.progress.info(`copy '${copy.name}' stored: ${copy.store.url(copy.key)}`);
          return;
        } catch (err) {
          copy.detach(err);
        }
      }
      copy.noteCleanup(await cleanUpCopy(copy, o.progress));
      o.progress.warn(`copy '${copy.name}' failed: ${copy.error!.message}`);
    }),
  );
  return done;
}

async function finishCopy(copy: CopyTarget, o: FinishCopiesOptions): Promise<FinishedCopy> {
  const { store } = copy;
  const signal = copy.controller.signal;
  const object = copy.written[0]!;
  const uploaded = copy.stage?.inner.upload.uploaded ?? 0;
  const sse = await checkStoredObject(store, object, { bytes: o.stored.bytes, uploaded, kmsKeyId: kmsKeyOf(copy.destination) });
  const files = o.files
    ? await storeFilesArchive({
        store,
        key: filesKeyFor(object.key),
        files: o.files,
        encryptor: o.encryptor,
        partSize: o.partSize,
        signal,
        onWritten: (w) => copy.written.push(w),
      })
    : undefined;
  let lock: SnapshotManifest["lock"];
  const objectLock = o.policy.objectLock;
  if (objectLock && store.capabilities.lock) {
    const until = new Date(Date.parse(o.manifest.takenAt) + objectLock.days * 86_400_000);
    lock = await lockObject(store, object, objectLock.mode, until);
    const filesObject = files && copy.written.find((w) => w.key === files.key);
    if (filesObject) await lockObject(store, filesObject, objectLock.mode, until);
  } else if (objectLock) {
    o.progress.warn(`copy '${copy.name}' (${store.type}) cannot lock objects: its snapshot is stored without a lock`);
  }
  const { versionId: _primaryVersion, ...facts } = o.manifest;
  const manifest = manifestSchema.parse({
    ...facts,
    key: object.key,
    ...(object.version ? { versionId: object.version } : {}),
    lock,
    sse,
    files,
  } satisfies SnapshotManifest);
  const manifestKey = await writeManifest(store, manifest, { lock, signal, onWritten: (w) => copy.written.push(w) });
  return { manifestKey, manifest };
}
