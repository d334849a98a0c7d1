import type { EncryptionInfo, Encryptor } from "../crypto/encryptor.js";
import { OperationError } from "../errors.js";
import type { BackupPolicy } from "../policy.js";
import type { Progress } from "../progress.js";
import type { ObjectStore, WrittenObject } from "../storage/object-store.js";
import type { VaultClient } from "../vault/client.js";
import type { RaftSnapshotMeta } from "../snapshot/archive.js";
import type { BackupAttempt } from "./attempt.js";
import { copyUploadShape, DetachableStage, type CopyTarget } from "./copies.js";
import type { SnapshotInventory } from "../snapshot/inventory/counter.js";
import { StateBinInventory } from "../snapshot/inventory/observer.js";
import { snapshotKeyFor } from "../snapshot/manifest.js";
import type { Stage } from "./pipeline.js";
import { EncryptionStage } from "./stages/encryption.js";
import { CountingStage, HashingStage } from "./stages/hashing.js";
import { ArchiveInspectionStage } from "./stages/inspection.js";
import { openVaultSnapshotSource } from "./stages/source.js";
import { UploadStage } from "./stages/upload.js";

export interface SnapshotPassOptions {
  store: ObjectStore;
  policy: BackupPolicy;
  /** The active node's client. */
  leader: VaultClient;
  leaderAddr: string;
  takenAt: Date;
  progress: Progress;
  stallTimeoutMs: number;
  partSize: number;
  queueSize: number;
  /** Client-side encryption (policy `encryption`): the upload then gets ciphertext. */
  encryptor?: Encryptor;
  /** Off-site copies written from the same chunks; a failing one is detached, never fails the pass. */
  copies?: readonly CopyTarget[];
}

/** What the one pass established about the snapshot and where it now is. */
export interface SnapshotPassResult {
  object: WrittenObject;
  /** SHA-256 and size of the stored object. */
  sha256: string;
  bytes: number;
  /** Bytes the upload sent (read back and compared by the upload check). */
  uploaded: number;
  meta: RaftSnapshotMeta;
  archiveEntries: number;
  /** Keys and bytes per prefix and mount, counted from state.bin by the archive check (uuids only). */
  inventory?: SnapshotInventory;
  /** Why there is no inventory, when there is none. */
  inventoryProblem?: string;
  /** With encryption: who can decrypt the stored object. */
  encryption?: EncryptionInfo;
}

/**
 * The one streamed pass of a backup: the active node's snapshot stream through the stages, each
 * with one job — SHA-256 of the whole file (hashing), gunzip + untar against the archive's own
 * SHA256SUMS (inspection), the store's streamed upload (upload) whose completion waits for the archive
 * check's verdict. A new stage is one more entry in the list below, not more code here.
 */
export async function streamSnapshotToStore(attempt: BackupAttempt, opts: SnapshotPassOptions): Promise<SnapshotPassResult> {
  const { policy, progress, pass } = { ...opts, pass: attempt.pass };
  const { store } = opts;
  attempt.current = "stream";
  // The stall watchdog starts with the stream; when it fires while the upload waits for the store, the store is named.
  const source = await openVaultSnapshotSource(pass, opts.leader, {
    leaderAddr: opts.leaderAddr,
    stallTimeoutMs: opts.stallTimeoutMs,
    blame: () => upload.blame(),
  });
  // Encrypted, the stored object's SHA-256 is taken of the ciphertext (below) and the plaintext is
  // only counted: the cipher's authentication carries the proof from one to the other
  // (docs/encryption.md, "What proves an encrypted snapshot"), so a second digest would prove
  // nothing more and cost a SHA-256 of the whole snapshot.
  const onBytes = (n: number) => progress.bytes?.("snapshot stream", n);
  const stored = new HashingStage(opts.encryptor ? undefined : onBytes);
  const counted = opts.encryptor ? new CountingStage(onBytes) : stored;
  // The inventory reads state.bin's bytes inside the archive check's own gunzip + untar: no second pass.
  const counting = new StateBinInventory();
  const inspection = new ArchiveInspectionStage({ observe: counting.observe });
  // The object key carries the raft index from meta.json, the archive's first entry: it is known
  // after a few KiB, long before the upload needs it for its first request.
  const keyKnown = inspection.meta.then((m) => {
    attempt.key = snapshotKeyFor(store.prefix, policy.cluster.name, opts.takenAt, m.Index);
    progress.info(`raft index ${m.Index} (term ${m.Term}); uploading to ${store.url(attempt.key)}`);
    return attempt.key;
  });
  keyKnown.catch(() => undefined);
  const upload = new UploadStage({
    store,
    key: keyKnown,
    contentType: opts.encryptor ? "application/octet-stream" : "application/gzip",
    partSize: opts.partSize,
    queueSize: opts.queueSize,
    signal: pass.signal,
    // The gate: a snapshot that fails the archive check never becomes an object.
    gate: () => inspection.result,
    onPartRetry: (m) => progress.info(m),
    onUploaded: () => {
      pass.touch();
      progress.bytes?.("upload", upload.upload.uploaded);
    },
  });
  attempt.uploads.push(upload.upload);
  const copyStages = (opts.copies ?? []).map((copy) => copyStage(copy, opts, keyKnown, inspection.result, pass.signal, () => pass.touch()));
  // The upload is finished last: its completion waits for the archive check's verdict anyway.
  // With encryption the plaintext is still archive-checked; the upload (and the stored object's
  // hash) get the ciphertext from the encryption stage wrapped around them.
  const stages: Stage[] = [counted, inspection, opts.encryptor ? new EncryptionStage(opts.encryptor, [stored, upload, ...copyStages]) : upload];
  if (!opts.encryptor) stages.push(...copyStages);
  await pass.run(source, stages);
  pass.close();
  const meta = await inspection.meta;
  const archive = await inspection.result;
  const key = await keyKnown;
  const object: WrittenObject = { key, version: upload.result!.version, etag: upload.result!.etag };
  attempt.written.push(object);
  for (const s of copyStages) {
    const r = s.inner.result;
    if (s.copy.live && r) s.copy.written.push({ key: s.copy.key!, version: r.version, etag: r.etag });
    else if (s.copy.live) s.copy.detach(new OperationError(`the upload of ${s.copy.store.url(s.copy.key)} ended without an object`));
  }
  progress.bytes?.("snapshot stream", counted.bytes, counted.bytes);
  const inventory = counting.result();
  const result = {
    object,
    sha256: stored.sha256,
    bytes: stored.bytes,
    uploaded: upload.upload.uploaded,
    meta,
    archiveEntries: archive.entries.length,
    inventory,
    inventoryProblem: counting.problem,
  };
  return opts.encryptor ? { ...result, encryption: opts.encryptor.info } : result;
}

/**
 * One copy's upload stage: its own key (its own prefix, the same name), its own signal (a detach
 * cancels its requests only), the same archive gate, and detached rather than failing the pass.
 */
function copyStage(copy: CopyTarget, opts: SnapshotPassOptions, primaryKey: Promise<string>, gate: Promise<unknown>, passSignal: AbortSignal, touch: () => void): DetachableStage {
  const key = primaryKey.then((k) => {
    copy.key = copy.store.prefix + k.slice(opts.store.prefix.length);
    return copy.key;
  });
  key.catch(() => undefined);
  const inner = new UploadStage({
    store: copy.store,
    key,
    contentType: opts.encryptor ? "application/octet-stream" : "application/gzip",
    ...copyUploadShape(copy.store.type, opts.partSize, opts.queueSize),
    signal: AbortSignal.any([passSignal, copy.controller.signal]),
    gate: () => gate,
    onPartRetry: (m) => opts.progress.info(`${copy.stageName}: ${m}`),
    onUploaded: () => {
      touch();
      stage.touch();
    },
  });
  // Half the stall timeout: a stalled copy is detached before the pass's own watchdog fires.
  const stage = new DetachableStage(copy, inner, Math.max(1_000, Math.floor(opts.stallTimeoutMs / 2)));
  return stage;
}
