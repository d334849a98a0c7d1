import { PassThrough } from "node:stream";
import { ConfigError, IntegrityError, OperationError, interruption, throwIfInterrupted } from "../errors.js";
import { undici } from "../lazy-modules.js";
import { silentProgress, type Progress } from "../progress.js";
import { StoreCapabilityError } from "../storage/errors.js";
import { manifestKeyFor } from "../snapshot/manifest.js";
import { StagePipeline, type Stage } from "../backup/pipeline.js";
import { HashingStage } from "../backup/stages/hashing.js";
import { ArchiveInspectionStage } from "../backup/stages/inspection.js";
import { writeOrWait } from "../backup/stages/writable.js";
import type { SnapshotStore, StoredSnapshot } from "./snapshot-store.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "../backup/stall-watchdog.js";
import { checkSinglePutSize } from "./single-put-limit.js";
import { checkUrl, errorCodeOf, explainUrlRefusal, putHeaders, putText, redactUrl } from "./url-source.js";

/**
 * Hand a snapshot to another account or an air-gapped site (docs/export.md): `exportSnapshot`
 * streams a stored snapshot to a pre-signed PUT URL, proving it on the way; `presignSnapshot`
 * makes pre-signed GET URLs of a snapshot and its manifest for the other side.
 */

export interface ExportOptions {
  store: SnapshotStore;
  snapshot: StoredSnapshot;
  /** Pre-signed PUT URL for the snapshot. */
  toUrl: string;
  /** Pre-signed PUT URL for its manifest (written last, after the snapshot). */
  manifestUrl?: string;
  progress?: Progress;
  stallTimeoutMs?: number;
  /** Stops the export at once (SIGTERM): the PUT is aborted before its last chunk, so nothing completes at the destination, and no manifest is written. */
  signal?: AbortSignal;
}

export interface ExportReport {
  ok: true;
  bucket: string;
  key: string;
  /** Where it was read from, in the store's URL scheme. */
  url: string;
  /** Where it went, without the signature. */
  to: string;
  manifestTo?: string;
  bytes: number;
  sha256: string;
  durationMs: number;
}

/**
 * PUTs the snapshot to a pre-signed URL as it streams from the store (constant memory: one chunk is held
 * back). The last chunk is only sent once SHA-256, size and archive check (not of an encrypted
 * snapshot's ciphertext) agree with the manifest:
 * a snapshot that does not match never completes at the destination (the request is aborted,
 * its Content-Length unmet), and no manifest is written for it.
 */
export async function exportSnapshot(opts: ExportOptions): Promise<ExportReport> {
  const started = Date.now();
  const progress = opts.progress ?? silentProgress;
  const { snapshot } = opts;
  const manifest = snapshot.manifest;
  const where = snapshot.url;
  if (snapshot.status !== "good" || !manifest)
    throw new IntegrityError(`${where} is not a good snapshot (${snapshot.problem ?? snapshot.status}); it cannot be exported`, { stage: "export" });
  checkUrl(opts.toUrl, "--to-url");
  if (opts.manifestUrl) checkUrl(opts.manifestUrl, "--manifest-url");
  checkSinglePutSize(manifest.bytes, opts.toUrl, "--to-url", progress);
  const to = redactUrl(opts.toUrl);
  progress.info(`exporting ${where} (${manifest.bytes} bytes) to ${to}`);

  // An encrypted snapshot goes as it is stored, ciphertext: SHA-256 and size prove it is the stored
  // object; its archive is checked by whoever holds the identity (vrb verify --identity), not here.
  const encrypted = manifest.encryption;
  if (encrypted) progress.info(`encrypted (${encrypted.format}): sent as stored; its archive is checked on the other side with the identity (vrb verify --identity)`);
  const pass = new StagePipeline();
  const hashing = new HashingStage((n) => progress.bytes?.("export", n, manifest.bytes));
  const inspection = encrypted ? undefined : new ArchiveInspectionStage();
  const put = new PresignedPutStage(opts.toUrl, to, manifest.bytes, encrypted ? "application/octet-stream" : "application/gzip", () => {
    const problems: string[] = [];
    if (hashing.bytes !== manifest.bytes) problems.push(`size ${hashing.bytes} bytes, manifest says ${manifest.bytes}`);
    if (hashing.sha256 !== manifest.sha256) problems.push(`sha256 ${hashing.sha256}, manifest says ${manifest.sha256}`);
    if (problems.length) throw new IntegrityError(`${where} does not match its manifest (${problems.join("; ")}): the export was aborted before it completed`, { stage: "export" });
  });
  const stop = () =>
    pass.fail("export", interruption(opts.signal!, "during the export: the PUT was aborted before its last byte, so nothing completed at the destination", "export"));
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    pass.watch(
      opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      (idle) => new OperationError(`nothing moved between ${where} and ${to} for ${Math.round(idle / 1000)}s; export aborted (stall timeout)`, { stage: "export" }),
    );
    const { body } = await pass.race(opts.store.openSnapshot(snapshot.key, { signal: pass.signal, onResume: (m) => progress.warn(m) }));
    const stages: Stage[] = inspection ? [hashing, inspection, put] : [hashing, put];
    await pass.run({ name: "download", stream: body }, stages);
  } catch (err) {
    throw pass.fail("export", err);
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    pass.close();
  }
  let manifestTo: string | undefined;
  if (opts.manifestUrl) {
    throwIfInterrupted(opts.signal, "before the manifest was written (the snapshot was sent; without its manifest it does not count as a snapshot)", "export");
    manifestTo = redactUrl(opts.manifestUrl);
    await putText(opts.manifestUrl, manifestTo, JSON.stringify(manifest, null, 2) + "\n");
  }
  progress.info(`exported ${where} to ${to}${manifestTo ? ` and its manifest to ${manifestTo}` : ""}`);
  return {
    ok: true,
    bucket: snapshot.bucket,
    key: snapshot.key,
    url: snapshot.url,
    to,
    manifestTo,
    bytes: hashing.bytes,
    sha256: hashing.sha256,
    durationMs: Date.now() - started,
  };
}

/**
 * A streamed PUT to a pre-signed URL with a known Content-Length. Holds back the newest chunk;
 * `finish` runs `release` (the manifest check: it throws to refuse) before sending it.
 */
class PresignedPutStage implements Stage {
  readonly name = "upload to URL";
  readonly failed: Promise<void>;
  private readonly body = new PassThrough({ highWaterMark: 1024 * 1024 });
  private readonly controller = new AbortController();
  private held?: Buffer;

  constructor(
    url: string,
    private readonly label: string,
    bytes: number,
    contentType: string,
    private readonly release: () => void,
  ) {
    this.failed = undici()
      .request(url, {
        method: "PUT",
        body: this.body,
        signal: this.controller.signal,
        headers: putHeaders(url, contentType, bytes),
        headersTimeout: 0,
        bodyTimeout: 0,
      })
      .then(
        async (res) => {
          const text = await res.body.text().catch(() => "");
          if (res.statusCode < 200 || res.statusCode >= 300) {
            throw new OperationError(explainUrlRefusal(res.statusCode, errorCodeOf(text, res.headers), label, "PUT", url), { stage: "export" });
          }
        },
        (err: unknown) => {
          throw new OperationError(`PUT ${label} failed: ${err instanceof Error ? err.message : String(err)}`, { stage: "export", cause: err });
        },
      );
    this.failed.catch(() => undefined);
  }

  write(chunk: Buffer): void | Promise<void> {
    const previous = this.held;
    this.held = chunk;
    if (previous) return writeOrWait(this.body, previous, `PUT ${this.label}: the request ended before the snapshot did`);
  }

  async finish(): Promise<void> {
    this.release();
    if (this.held) await writeOrWait(this.body, this.held, `PUT ${this.label}: the request ended before the snapshot did`);
    this.held = undefined;
    this.body.end();
    await this.failed;
  }

  abort(): void {
    this.controller.abort();
    this.body.destroy();
  }
}

export interface PresignedUrls {
  bucket: string;
  key: string;
  /** Where the snapshot is stored, in the store's URL scheme (no credentials in it). */
  location: string;
  sha256: string;
  bytes: number;
  snapshotUrl: string;
  manifestUrl: string;
  expiresAt: string;
}

/** SigV4 pre-signed URLs live at most 7 days. */
export const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** Pre-signed GET URLs of a good snapshot and its manifest, valid for `expiresInSeconds`. */
export async function presignSnapshot(store: SnapshotStore, snapshot: StoredSnapshot, expiresInSeconds: number): Promise<PresignedUrls> {
  if (!Number.isInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_PRESIGN_SECONDS) {
    throw new ConfigError(`--expires: must be between 1s and 7d (the longest a SigV4 pre-signed URL lives), got ${expiresInSeconds}s`, { field: "--expires" });
  }
  const where = snapshot.url;
  if (snapshot.status !== "good" || !snapshot.manifest) throw new IntegrityError(`${where} is not a good snapshot (${snapshot.problem ?? snapshot.status}); no URLs made for it`);
  const objects = store.forSnapshot(snapshot).objects;
  if (!objects.capabilities.presign) {
    throw new StoreCapabilityError(
      `destination '${objects.name}' is a ${objects.type} store, which cannot make pre-signed URLs: hand ${where} over with 'vrb export --to-url' instead`,
      { stage: "presign" },
    );
  }
  const sign = (key: string) => objects.presign(key, expiresInSeconds);
  return {
    bucket: snapshot.bucket,
    key: snapshot.key,
    location: snapshot.url,
    sha256: snapshot.manifest.sha256,
    bytes: snapshot.manifest.bytes,
    snapshotUrl: await sign(snapshot.key),
    manifestUrl: await sign(manifestKeyFor(snapshot.key)),
    expiresAt: new Date(Date.now() + expiresInSeconds * 1000).toISOString(),
  };
}
