import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { IntegrityError, OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { createArchiveInspector, type ArchiveReport } from "./archive.js";
import type { SnapshotStore, StoredSnapshot } from "./store.js";
import { DEFAULT_STALL_TIMEOUT_MS, StallWatchdog } from "./stream.js";

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

/** Hashes and counts the bytes flowing through it, and feeds a copy to the archive inspector. */
class HashTee extends Transform {
  readonly hash = createHash("sha256");
  bytes = 0;
  constructor(
    private readonly side: Writable,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    // Respect the inspector's backpressure so memory stays flat. An inspector that rejected the
    // bytes is destroyed and never drains: end the stream with its error instead of waiting.
    if (this.side.destroyed) return cb(this.sideFailure());
    if (this.side.write(chunk)) return cb(null, chunk);
    const settle = () => {
      this.side.off("drain", settle);
      this.side.off("close", settle);
      cb(this.side.destroyed ? this.sideFailure() : null, chunk);
    };
    this.side.on("drain", settle);
    this.side.on("close", settle);
  }
  private sideFailure(): Error {
    return this.side.errored ?? new Error("the archive check stopped reading the snapshot");
  }
  override _flush(cb: TransformCallback): void {
    this.side.end();
    cb();
  }
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
  // A download has no timeout of its own: an S3 server that stops sending would hold a refresh
  // or a restore forever. The watchdog turns that into an error that names the stall.
  const abort = new AbortController();
  const watchdog = new StallWatchdog(opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS, (idle) => {
    abort.abort(new OperationError(`S3 sent no data of ${where} for ${Math.round(idle / 1000)}s; verify aborted (stall timeout)`, { stage: "verify" }));
  }).start();
  const inspector = createArchiveInspector();
  let archive: ArchiveReport;
  let tee: HashTee;
  try {
    const { body } = await store.openSnapshot(snapshot.key, { signal: abort.signal });
    abort.signal.addEventListener("abort", () => body.destroy(abort.signal.reason as Error), { once: true });
    tee = new HashTee(inspector.input, (n) => {
      watchdog.touch();
      progress.bytes?.("verify", n, manifest.bytes);
    });
    const sink = opts.saveTo ? createWriteStream(opts.saveTo, { mode: 0o600 }) : new Writable({ write: (_c, _e, cb) => cb() });
    await pipeline(body, tee, sink);
    archive = await inspector.result;
  } catch (err) {
    inspector.input.destroy();
    const verdict = await inspector.result.then(() => undefined, (e: unknown) => e);
    if (abort.signal.aborted) throw abort.signal.reason as Error;
    if (err instanceof IntegrityError) throw err;
    // The stream may have failed because the inspector rejected the bytes; prefer its verdict.
    if (verdict instanceof IntegrityError) throw verdict;
    throw err;
  } finally {
    watchdog.stop();
  }
  const sha256 = tee.hash.digest("hex");
  const problems: string[] = [];
  if (tee.bytes !== manifest.bytes) problems.push(`size ${tee.bytes} bytes, manifest says ${manifest.bytes}`);
  if (sha256 !== manifest.sha256) problems.push(`sha256 ${sha256}, manifest says ${manifest.sha256}`);
  if (archive.meta.Index !== manifest.raft.index) problems.push(`raft index ${archive.meta.Index}, manifest says ${manifest.raft.index}`);
  if (problems.length) throw new IntegrityError(`${where} does not match its manifest: ${problems.join("; ")}`, { stage: "verify" });
  return {
    ok: true,
    bucket: snapshot.bucket,
    key: snapshot.key,
    bytes: tee.bytes,
    sha256,
    raft: { index: archive.meta.Index, term: archive.meta.Term, snapshotId: archive.meta.ID },
    archive: { entries: archive.entries.length, checked: archive.checkedEntries },
    durationMs: Date.now() - started,
  };
}

export { HashTee };
