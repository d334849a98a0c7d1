import { createWriteStream } from "node:fs";
import { decryptingStream, type CiphertextTally } from "../crypto/decrypt-stream.js";
import { requireIdentityFor, type Identities } from "../crypto/identities.js";
import { IntegrityError, interruption } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import type { ArchiveInspectorOptions, ArchiveReport } from "../snapshot/archive.js";
import { StagePipeline, type PipelineSource, type Stage } from "../backup/pipeline.js";
import { CountingStage, HashingStage } from "../backup/stages/hashing.js";
import { ArchiveInspectionStage } from "../backup/stages/inspection.js";
import { openStoredSnapshotSource } from "../backup/stages/source.js";
import { WritableStage } from "../backup/stages/writable.js";
import type { SnapshotStore, StoredSnapshot } from "./snapshot-store.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "../backup/stall-watchdog.js";

export interface VerifyReport {
  ok: true;
  bucket: string;
  key: string;
  /** Where it was read from (the store's URL, or the pre-signed URL's label). */
  url: string;
  bytes: number;
  sha256: string;
  raft: { index: number; term: number; snapshotId: string };
  archive: { entries: number; checked: string[] };
  /**
   * Encrypted snapshots: whether it was decrypted (an identity given) and so archive-checked, and
   * the decrypted size; `sha256` only when an older manifest recorded the plaintext's and it matched.
   */
  encryption?: { format: string; decrypted: boolean; plaintext?: { bytes: number; sha256?: string } };
  durationMs: number;
}

/** What a verifying download may do besides proving the bytes. */
export interface VerifyDownloadOptions {
  progress?: Progress;
  saveTo?: string;
  stallTimeoutMs?: number;
  /** Decrypts an encrypted snapshot (then the archive checks run, and `saveTo` gets the plaintext). */
  identities?: Identities;
  /** Sees archive entries' (plaintext) bytes as the archive check reads them, e.g. the restore's proof of the unseal keys. */
  observe?: ArchiveInspectorOptions["observe"];
  /** Stops the download at once (SIGTERM): it fails with an InterruptedError; `saveTo` is then partial (the caller's to remove). */
  signal?: AbortSignal;
}

/**
 * Re-downloads a stored snapshot and proves it: full-object SHA-256 and size equal to the
 * manifest's, every archive entry equal to the archive's SHA256SUMS, raft index equal to the
 * manifest's. With `saveTo`, the verified bytes are also written to that file (for a restore).
 * Throws IntegrityError (exit 3) on any mismatch.
 */
export async function verifyStoredSnapshot(store: SnapshotStore, snapshot: StoredSnapshot, opts: VerifyDownloadOptions = {}): Promise<VerifyReport> {
  const where = snapshot.url;
  // A download has no timeout of its own: a store that stops sending would hold a refresh or
  // a restore forever; the source's watchdog turns that into an error naming the stall.
  return verifyDownload(snapshot, where, opts, (pass) =>
    openStoredSnapshotSource(pass, store, snapshot.key, {
      stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      where,
      onResume: (m) => opts.progress?.warn(m),
    }),
  );
}

/**
 * The one proof of a downloaded snapshot, wherever the bytes come from (the store, a pre-signed
 * URL): the same stages as the backup's pass — full-file SHA-256 and the archive check, decrypting
 * first when the manifest says the object is encrypted and identities are given — plus the file
 * for a restore; then every figure against the manifest.
 */
export async function verifyDownload(
  snapshot: StoredSnapshot,
  where: string,
  opts: VerifyDownloadOptions,
  openSource: (pass: StagePipeline) => Promise<PipelineSource>,
): Promise<VerifyReport> {
  const started = Date.now();
  const progress = opts.progress ?? silentProgress;
  const manifest = snapshot.manifest;
  if (!manifest) throw new IntegrityError(`${where} has no manifest: the backup did not finish, it cannot be trusted`, { stage: "verify" });
  const enc = manifest.encryption;
  // Encrypted and no identity: only the stored object can be checked (its digest and size).
  if (enc && (opts.identities || opts.saveTo)) requireIdentityFor(enc, opts.identities, where);
  const decrypt = enc && opts.identities ? { info: enc, ids: opts.identities } : undefined;
  const pass = new StagePipeline();
  let cipher: CiphertextTally | undefined;
  // Progress counts the stored bytes, which the manifest's size is of, decrypting or not.
  const onBytes = (n: number) => progress.bytes?.("verify", cipher ? cipher.bytes : n, manifest.bytes || undefined);
  // Decrypted, the plaintext is hashed only against an older manifest that recorded its digest;
  // otherwise the ciphertext's digest and the cipher's authentication are the proof.
  const hashing = decrypt && !manifest.plaintext ? undefined : new HashingStage(onBytes);
  const counted = hashing ?? new CountingStage(onBytes);
  const inspection = enc && !decrypt ? undefined : new ArchiveInspectionStage({ observe: opts.observe });
  let archive: ArchiveReport | undefined;
  const stop = () => pass.fail("verify", interruption(opts.signal!, "during the download", "verify"));
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    let source = await pass.race(openSource(pass));
    if (decrypt) {
      // The stages see plaintext; the ciphertext is hashed on its way into the decryption.
      const d = await pass.race(decryptingStream(decrypt.info, decrypt.ids, source.stream, where));
      source = { name: source.name, stream: d.plain };
      cipher = d.stored;
    }
    const stages: Stage[] = inspection ? [counted, inspection] : [counted];
    if (opts.saveTo) stages.push(new WritableStage("save", createWriteStream(opts.saveTo, { mode: 0o600 })));
    await pass.run(source, stages);
    archive = inspection && (await inspection.result);
  } catch (err) {
    // Nothing may keep reading or writing; the first failure (a stall, the archive check's
    // verdict, a broken download) is the one reported.
    throw pass.fail("verify", err);
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    pass.close();
  }
  // `sha256`/`bytes` of the manifest are the stored object's; an older encrypted one's `plaintext` is the snapshot's.
  // Not decrypted: the stored bytes themselves went through the hashing stage.
  const stored = cipher ? { sha256: cipher.sha256(), bytes: cipher.bytes } : { sha256: hashing!.sha256, bytes: counted.bytes };
  const problems: string[] = [];
  // A snapshot handed over with only its SHA-256 has no size to compare (bytes 0 in its stand-in manifest).
  if (manifest.bytes && stored.bytes !== manifest.bytes) problems.push(`size ${stored.bytes} bytes, manifest says ${manifest.bytes}`);
  if (stored.sha256 !== manifest.sha256) problems.push(`sha256 ${stored.sha256}, manifest says ${manifest.sha256}`);
  const plaintext = cipher ? { bytes: counted.bytes, ...(hashing ? { sha256: hashing.sha256 } : {}) } : undefined;
  if (plaintext && manifest.plaintext) {
    if (plaintext.bytes !== manifest.plaintext.bytes) problems.push(`decrypted size ${plaintext.bytes} bytes, manifest says ${manifest.plaintext.bytes}`);
    if (plaintext.sha256 !== manifest.plaintext.sha256) problems.push(`decrypted sha256 ${plaintext.sha256}, manifest says ${manifest.plaintext.sha256}`);
  }
  if (archive && archive.meta.Index !== manifest.raft.index) problems.push(`raft index ${archive.meta.Index}, manifest says ${manifest.raft.index}`);
  if (problems.length) throw new IntegrityError(`${where} does not match its manifest: ${problems.join("; ")}`, { stage: "verify" });
  return {
    ok: true,
    bucket: snapshot.bucket,
    key: snapshot.key,
    url: snapshot.url,
    bytes: stored.bytes,
    sha256: stored.sha256,
    raft: archive ? { index: archive.meta.Index, term: archive.meta.Term, snapshotId: archive.meta.ID } : manifest.raft,
    archive: archive ? { entries: archive.entries.length, checked: archive.checkedEntries } : { entries: manifest.archive.entries, checked: [] },
    ...(enc ? { encryption: { format: enc.format, decrypted: Boolean(cipher), plaintext } } : {}),
    durationMs: Date.now() - started,
  };
}
