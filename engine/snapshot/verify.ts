import { createWriteStream } from "node:fs";
import { IntegrityError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import type { ArchiveReport } from "./archive.js";
import { StagePipeline, type Stage } from "./pipeline.js";
import { HashingStage } from "./stages/hashing.js";
import { ArchiveInspectionStage } from "./stages/inspection.js";
import { openStoredSnapshotSource } from "./stages/source.js";
import { WritableStage } from "./stages/writable.js";
import type { SnapshotStore, StoredSnapshot } from "./store.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "./stream.js";

export interface VerifyReport {
  ok: true;
  bucket: string;
  key: string;
  bytes: number;
  sha256: string;
  raft: { index: number; term: number; snapshotId: string };
  archive: { entries: number; checked: string[] };
  durationMs: number;
}

/**
 * Re-downloads a stored snapshot and proves it: full-object SHA-256 and size equal to the
 * manifest's, every archive entry equal to the archive's SHA256SUMS, raft index equal to the
 * manifest's. With `saveTo`, the verified bytes are also written to that file (for a restore).
 * Throws IntegrityError (exit 3) on any mismatch.
 */
export async function verifyStoredSnapshot(
  store: SnapshotStore,
  snapshot: StoredSnapshot,
  opts: { progress?: Progress; saveTo?: string; stallTimeoutMs?: number } = {},
): Promise<VerifyReport> {
  const started = Date.now();
  const progress = opts.progress ?? silentProgress;
  const manifest = snapshot.manifest;
  const where = `s3://${snapshot.bucket}/${snapshot.key}`;
  if (!manifest) throw new IntegrityError(`${where} has no manifest: the backup did not finish, it cannot be trusted`, { stage: "verify" });
  // The same stages as the backup's pass: full-file SHA-256 and the archive check, plus the file
  // for a restore. A download has no timeout of its own: an S3 server that stops sending would
  // hold a refresh or a restore forever; the source's watchdog turns that into an error naming the stall.
  const pass = new StagePipeline();
  const hashing = new HashingStage((n) => progress.bytes?.("verify", n, manifest.bytes));
  const inspection = new ArchiveInspectionStage();
  let archive: ArchiveReport;
  try {
    const source = await openStoredSnapshotSource(pass, store, snapshot.key, {
      stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      where,
      onResume: (m) => progress.warn(m),
    });
    const stages: Stage[] = [hashing, inspection];
    if (opts.saveTo) stages.push(new WritableStage("save", createWriteStream(opts.saveTo, { mode: 0o600 })));
    await pass.run(source, stages);
    archive = await inspection.result;
  } catch (err) {
    // Nothing may keep reading or writing; the first failure (a stall, the archive check's
    // verdict, a broken download) is the one reported.
    throw pass.fail("verify", err);
  } finally {
    pass.close();
  }
  const { sha256, bytes } = hashing;
  const problems: string[] = [];
  if (bytes !== manifest.bytes) problems.push(`size ${bytes} bytes, manifest says ${manifest.bytes}`);
  if (sha256 !== manifest.sha256) problems.push(`sha256 ${sha256}, manifest says ${manifest.sha256}`);
  if (archive.meta.Index !== manifest.raft.index) problems.push(`raft index ${archive.meta.Index}, manifest says ${manifest.raft.index}`);
  if (problems.length) throw new IntegrityError(`${where} does not match its manifest: ${problems.join("; ")}`, { stage: "verify" });
  return {
    ok: true,
    bucket: snapshot.bucket,
    key: snapshot.key,
    bytes,
    sha256,
    raft: { index: archive.meta.Index, term: archive.meta.Term, snapshotId: archive.meta.ID },
    archive: { entries: archive.entries.length, checked: archive.checkedEntries },
    durationMs: Date.now() - started,
  };
}
