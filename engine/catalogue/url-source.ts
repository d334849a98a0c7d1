import type { Readable } from "node:stream";
import { ConfigError, IntegrityError, OperationError } from "../errors.js";
import { undici } from "../lazy-modules.js";
import { silentProgress, type Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { parseManifest, type SnapshotManifest } from "../snapshot/manifest.js";
import { StagePipeline } from "../backup/pipeline.js";
import { ArchiveInspectionStage } from "../backup/stages/inspection.js";
import type { StoredSnapshot } from "./snapshot-store.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "../backup/stall-watchdog.js";
import { verifyDownload, type VerifyDownloadOptions, type VerifyReport } from "./verify-stored.js";

/**
 * Snapshots behind pre-signed (pre-authenticated) URLs (docs/export.md): restore, verify and drill
 * a snapshot handed over as an https:// GET URL, with the expected SHA-256 from `--sha256` or the
 * manifest's own URL. A URL is a secret (its query string is the signature): it is registered for
 * redaction and only ever shown as `redactUrl(url)`.
 */

/** `https://…` (or `http://…` for local test servers): a URL ref instead of an S3 reference. */
export function isSnapshotUrl(ref: string): boolean {
  return /^https?:\/\//i.test(ref);
}

/** A URL for messages: scheme, host and path; the query string (signature, credential) never. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? "?[REDACTED]" : ""}`;
  } catch {
    return "[REDACTED URL]";
  }
}

/** Registers the whole URL and its signing parameters as secrets, so no output shows them. */
export function registerUrlSecret(url: string | undefined): void {
  if (!url) return;
  registerSecret(url);
  try {
    const u = new URL(url);
    registerSecret(u.search.slice(1));
    for (const [k, v] of u.searchParams) if (/signature|credential|token|sig$|key/i.test(k)) registerSecret(v);
  } catch {
    // not a URL: the whole string is registered above
  }
}

/** A URL ref checked for shape: http(s), parseable. ConfigError names the flag. */
export function checkUrl(url: string, field: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${field}: not a valid URL (${redactUrl(url)})`, { field });
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new ConfigError(`${field}: must be an https:// URL, got ${u.protocol}`, { field });
  registerUrlSecret(url);
  return url;
}

/**
 * The error code of a refused request, for messages: the XML body's (`<Code>AccessDenied</Code>`,
 * S3 and Azure), else Azure's `x-ms-error-code` header (its answers to some requests have no body).
 */
export function errorCodeOf(body: string, headers: Record<string, string | string[] | undefined> = {}): string | undefined {
  const header = headers["x-ms-error-code"];
  return /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? (typeof header === "string" ? header : undefined);
}

/**
 * Why a URL was refused, in words that point at the fix. `url` (never shown) tells a PUT URL that
 * carries a checksum of other bytes: recent AWS SDKs sign one of an empty body into a pre-signed
 * PutObject unless told not to, and S3 then refuses any snapshot sent to it.
 */
export function explainUrlRefusal(status: number, code: string | undefined, label: string, method: string, url?: string): string {
  const what = `${method} ${label} was refused (HTTP ${status}${code ? ` ${code}` : ""})`;
  const checksum = url && method === "PUT" ? checksumParamOf(url) : undefined;
  if (checksum && /digest|checksum/i.test(code ?? "")) {
    return (
      `${what}: the URL carries a checksum (${checksum}) of other bytes than the snapshot's. Recent AWS SDKs sign one of an empty body into ` +
      `pre-signed PUT URLs: ask for a new URL made without it (JavaScript v3: the S3Client's requestChecksumCalculation: "WHEN_REQUIRED"; ` +
      `Python: request_checksum_calculation="when_required")`
    );
  }
  if (status === 403 && /expired/i.test(code ?? "")) return `${what}: the pre-signed URL has expired; ask for a new one (vrb presign)`;
  if (status === 403) return `${what}: the URL expired or its signature does not match (copied whole, for this method?); ask for a new one (vrb presign)`;
  if (status === 404) return `${what}: no such object`;
  return what;
}

/** The name of an S3 checksum signed into a pre-signed URL (x-amz-checksum-crc32, ...), if any. */
function checksumParamOf(url: string): string | undefined {
  try {
    return [...new URL(url).searchParams.keys()].find((k) => /^x-amz-checksum-/i.test(k));
  } catch {
    return undefined;
  }
}

/** One request to a URL; non-2xx answers are OperationErrors with the reason (the body is read for its code). */
async function open(method: "GET" | "PUT", url: string, label: string, opts: { signal?: AbortSignal; body?: Readable | string; headers?: Record<string, string> } = {}) {
  let res;
  try {
    res = await undici().request(url, { method, signal: opts.signal, body: opts.body, headers: opts.headers, headersTimeout: 60_000, bodyTimeout: 0 });
  } catch (err) {
    throw new OperationError(`${method} ${label} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    const text = await res.body.text().catch(() => "");
    throw new OperationError(explainUrlRefusal(res.statusCode, errorCodeOf(text, res.headers), label, method, url));
  }
  return res;
}

/** GETs a small text document (a manifest) from a URL. */
export async function fetchText(url: string, label: string): Promise<string> {
  const res = await open("GET", url, label);
  const text = await res.body.text();
  if (text.length > 1024 * 1024) throw new IntegrityError(`${label} is larger than 1 MiB: not a manifest`);
  return text;
}

/** A URL of Azure Blob's own host (`ACCOUNT.blob.core.windows.net`). */
export function isAzureBlobHost(url: URL): boolean {
  return url.hostname.toLowerCase().endsWith(".blob.core.windows.net");
}

/** A pre-authenticated Azure Blob URL: the service's host, or a shared access signature (`sv` and `sig`) in front of another. */
export function isAzureBlobUrl(url: URL): boolean {
  return isAzureBlobHost(url) || (url.searchParams.has("sv") && url.searchParams.has("sig"));
}

/**
 * The headers of a PUT of `bytes` to a pre-signed URL. Azure's Put Blob refuses a request that does
 * not say which kind of blob it makes (HTTP 400), and a SAS cannot say it in its query: to an Azure
 * URL the PUT says BlockBlob. S3's pre-signed URLs take the plain PUT.
 */
export function putHeaders(url: string, contentType: string, bytes: number): Record<string, string> {
  const headers: Record<string, string> = { "content-type": contentType, "content-length": String(bytes) };
  if (isAzureBlobUrl(new URL(url))) headers["x-ms-blob-type"] = "BlockBlob";
  return headers;
}

/** PUTs a small text document (a manifest) to a pre-signed URL. */
export async function putText(url: string, label: string, text: string, contentType = "application/json"): Promise<void> {
  const res = await open("PUT", url, label, { body: text, headers: putHeaders(url, contentType, Buffer.byteLength(text)) });
  await res.body.dump();
}

/**
 * Where a restore, verify or drill takes a snapshot from when it is not an S3 reference: the
 * restore's preflight calls `resolve` (no node touched) and `download` (into its private temp file).
 */
export interface RemoteSnapshot {
  /** For messages and reports: never a secret part. */
  readonly label: string;
  /** The snapshot with its manifest (fetched, or made from the archive when only a SHA-256 was given). */
  resolve(progress?: Progress): Promise<StoredSnapshot>;
  /** Downloads once, proving SHA-256, size and the archive; with `saveTo` also writes the bytes there (0600). */
  download(snapshot: StoredSnapshot, opts?: VerifyDownloadOptions): Promise<VerifyReport>;
}

export interface UrlSnapshotOptions {
  /** Pre-signed GET URL of the snapshot. */
  url: string;
  /** Pre-signed GET URL of its manifest. */
  manifestUrl?: string;
  /** Expected SHA-256 (hex) of the snapshot. With a manifest URL both must agree. */
  sha256?: string;
  /** Cluster name for reports when there is no manifest. */
  cluster?: string;
  stallTimeoutMs?: number;
}

/** A snapshot behind pre-signed GET URLs. Needs the expected SHA-256 (`sha256` or `manifestUrl`): refused otherwise (exit 2). */
export class UrlSnapshot implements RemoteSnapshot {
  readonly label: string;
  private readonly sha256?: string;

  constructor(private readonly opts: UrlSnapshotOptions) {
    checkUrl(opts.url, "ref");
    if (opts.manifestUrl) checkUrl(opts.manifestUrl, "--manifest-url");
    this.label = redactUrl(opts.url);
    if (opts.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(opts.sha256)) {
      throw new ConfigError("--sha256: must be the 64 hex digits of the snapshot's SHA-256 (its manifest's sha256)", { field: "--sha256" });
    }
    this.sha256 = opts.sha256?.toLowerCase();
    if (!this.sha256 && !opts.manifestUrl) {
      throw new ConfigError(
        `a URL ref needs the snapshot's expected SHA-256 to be trusted: give --sha256 HEX or --manifest-url URL (the manifest's pre-signed URL, e.g. from vrb presign)`,
        { field: "--sha256" },
      );
    }
  }

  async resolve(progress: Progress = silentProgress): Promise<StoredSnapshot> {
    let manifest: SnapshotManifest;
    if (this.opts.manifestUrl) {
      const label = redactUrl(this.opts.manifestUrl);
      manifest = parseManifest(await fetchText(this.opts.manifestUrl, label), label);
      if (this.sha256 && this.sha256 !== manifest.sha256) {
        throw new IntegrityError(`--sha256 ${this.sha256} does not match the manifest's sha256 ${manifest.sha256} (${label}): refusing the snapshot`, { stage: "preflight" });
      }
    } else {
      // No manifest: the facts a restore needs before downloading come from the archive's first
      // entry (meta.json, a few KiB in); the download proves the whole against --sha256 later.
      manifest = await this.peekManifest(progress);
    }
    return {
      bucket: "pre-signed URL",
      key: this.label,
      url: this.label,
      cluster: manifest.cluster,
      takenAt: new Date(manifest.takenAt),
      raftIndex: manifest.raft.index,
      bytes: manifest.bytes,
      status: "good",
      manifest,
    };
  }

  private async peekManifest(progress: Progress): Promise<SnapshotManifest> {
    const pass = new StagePipeline();
    const inspection = new ArchiveInspectionStage();
    try {
      const res = await open("GET", this.opts.url, this.label, { signal: pass.signal });
      const bytes = Number(res.headers["content-length"] ?? 0);
      const running = pass.run({ name: "download", stream: res.body }, [inspection]);
      running.catch(() => undefined);
      const meta = await pass.race(inspection.meta);
      progress.info(`${this.label}: raft index ${meta.Index} (term ${meta.Term}); no manifest, the download is checked against --sha256`);
      return {
        format: 1,
        cluster: this.opts.cluster ?? "unknown",
        key: this.label,
        bytes,
        sha256: this.sha256!,
        takenAt: new Date(0).toISOString(),
        vault: { version: "unknown", leaderAddr: "" },
        raft: { index: meta.Index, term: meta.Term, snapshotId: meta.ID },
        archive: { entries: 0, verified: true },
        tool: { name: "vault-raft-backup", version: "url" },
      };
    } finally {
      // Only the first entry was wanted: stop the download.
      pass.fail("download", new OperationError("enough read"));
      pass.close();
    }
  }

  /** Downloads once through the same proof as a stored snapshot (verifyDownload), decrypting with `identities` when the manifest says it is encrypted. */
  download(snapshot: StoredSnapshot, opts: VerifyDownloadOptions = {}): Promise<VerifyReport> {
    const stall = opts.stallTimeoutMs ?? this.opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    return verifyDownload(snapshot, this.label, opts, async (pass) => {
      pass.watch(stall, (idle) => new OperationError(`${this.label} sent no data for ${Math.round(idle / 1000)}s; download aborted (stall timeout)`, { stage: "download" }));
      const res = await pass.race(open("GET", this.opts.url, this.label, { signal: pass.signal }));
      return { name: "download", stream: res.body };
    });
  }
}
