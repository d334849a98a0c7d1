import type { Encryptor } from "../crypto/encryptor.js";
import type { CollectedFile } from "../files/collect.js";
import { storeFilesArchive } from "../files/store-files.js";
import { packageInfo } from "../package-info.js";
import type { BackupPolicy } from "../policy.js";
import type { Progress } from "../progress.js";
import type { ObjectStore } from "../storage/object-store.js";
import type { VaultClient } from "../vault/client.js";
import type { PreflightReport } from "../vault/cluster-preflight.js";
import type { BackupAttempt } from "./attempt.js";
import { checkStoredObject, kmsKeyOf, lockObject, writeManifest } from "./finish-steps.js";
import { backupInventory, type BackupInventory } from "../snapshot/inventory/in-backup.js";
import { filesKeyFor, manifestSchema, type SnapshotManifest } from "../snapshot/manifest.js";
import type { SnapshotPassResult } from "./snapshot-pass.js";

// What happens to a backup once its snapshot object is stored, in order: the upload check, the
// files archive beside it, the object lock, the inventory and shrink guard, and the manifest,
// LAST (without it the snapshot does not count). Each step is one of attempt's timed stages, so
// it races the attempt's deadline and names itself in errors; every object written is recorded
// in attempt.written, which the caller removes when a later step fails. The per-object steps
// themselves (read back, lock, manifest PUT) are in finishing.ts.

export interface FinishOptions {
  store: ObjectStore;
  policy: BackupPolicy;
  pre: PreflightReport;
  stored: SnapshotPassResult;
  takenAt: Date;
  /** The active node's client (the guard reads the mount table there). */
  leader: VaultClient;
  progress: Progress;
  /** Files found and scanned before the pass (policy `files`). */
  files?: readonly CollectedFile[];
  encryptor?: Encryptor;
  partSize: number;
}

export interface FinishedBackup {
  manifest: SnapshotManifest;
  manifestKey: string;
  sse?: SnapshotManifest["sse"];
  judged: BackupInventory;
}

export async function finishBackup(attempt: BackupAttempt, o: FinishOptions): Promise<FinishedBackup> {
  const { store, policy, stored } = o;
  const { object } = stored;
  const kmsKeyId = kmsKeyOf(policy.destination);
  const sse = await attempt.timed("upload check", () => checkStoredObject(store, object, { bytes: stored.bytes, uploaded: stored.uploaded, kmsKeyId }));
  const files = o.files
    ? await attempt.timed("files upload", () =>
        storeFilesArchive({
          store,
          key: filesKeyFor(object.key),
          files: o.files!,
          encryptor: o.encryptor,
          partSize: o.partSize,
          signal: attempt.pass.signal,
          onWritten: (w) => attempt.written.push(w),
        }),
      )
    : undefined;
  const lock = await lockWritten(attempt, o, files?.key);
  const judged = await attempt.timed("guard", () =>
    backupInventory({ store, policy, leader: o.leader, counted: stored.inventory, problem: stored.inventoryProblem, progress: o.progress }),
  );
  const manifest = snapshotManifest({ ...o, lock, sse, judged, files });
  const manifestKey = await attempt.timed("manifest", () => writeManifest(store, manifest, { lock, signal: attempt.pass.signal, onWritten: (w) => attempt.written.push(w) }));
  return { manifest, manifestKey, sse, judged };
}

/** With policy `objectLock`: the snapshot and its files archive locked until takenAt + days (stage "lock"). */
async function lockWritten(attempt: BackupAttempt, o: FinishOptions, filesKey: string | undefined): Promise<SnapshotManifest["lock"]> {
  const objectLock = o.policy.objectLock;
  if (!objectLock) return undefined;
  const until = new Date(o.takenAt.getTime() + objectLock.days * 86_400_000);
  const lock = await attempt.timed("lock", () => lockObject(o.store, o.stored.object, objectLock.mode, until));
  const filesObject = filesKey && attempt.written.find((w) => w.key === filesKey);
  if (filesObject) await attempt.timed("lock", () => lockObject(o.store, filesObject, objectLock.mode, until));
  o.progress.info(`locked (${lock.mode}) until ${lock.until}`);
  return lock;
}

/** The manifest of a stored snapshot: everything a restore, a verify and retention go by. */
function snapshotManifest(r: {
  policy: BackupPolicy;
  pre: PreflightReport;
  stored: SnapshotPassResult;
  takenAt: Date;
  lock: SnapshotManifest["lock"];
  sse: SnapshotManifest["sse"];
  judged: BackupInventory;
  files?: SnapshotManifest["files"];
}): SnapshotManifest {
  const { pre, stored } = r;
  return manifestSchema.parse({
    format: 1,
    cluster: r.policy.cluster.name,
    key: stored.object.key,
    bytes: stored.bytes,
    sha256: stored.sha256,
    ...(stored.object.version ? { versionId: stored.object.version } : {}),
    takenAt: r.takenAt.toISOString(),
    vault: { version: pre.version, product: pre.product, leaderAddr: pre.leaderAddr, clusterId: pre.clusterId, seal: pre.seal },
    raft: { index: stored.meta.Index, term: stored.meta.Term, snapshotId: stored.meta.ID },
    archive: { entries: stored.archiveEntries, verified: true },
    lock: r.lock,
    sse: r.sse,
    tool: packageInfo(),
    inventory: r.judged.inventory,
    suspect: r.judged.suspect,
    encryption: stored.encryption,
    files: r.files,
  } satisfies SnapshotManifest);
}
