import { createServer, type Server } from "node:http";
import { OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import type { ObjectStore } from "../storage/object-store.js";
import { renderMetrics, type ExporterState } from "./metrics.js";
import type { ManifestCache } from "../catalogue/snapshot-store.js";
import { readClusterStatuses, type ClusterStatus, type ComplianceLockCache } from "./report.js";

export interface ExporterOptions {
  /** The destination's store: every cluster under its prefix is served. */
  store: ObjectStore;
  /** schedule.every for clusters whose status record names none. */
  every: string;
  host: string;
  port: number;
  /** Time between reads of the bucket. */
  intervalMs: number;
  /** A read that takes longer is abandoned and counted as an error (default: the interval, at least 10 s). */
  refreshTimeoutMs?: number;
  /** Data older than this is served with vrb_status_stale 1 (default: twice the interval). */
  staleAfterMs?: number;
  progress?: Progress;
}

export interface RunningExporter {
  url: string;
  /** Resolves after the first read of the bucket (successful or not). */
  firstRefresh: Promise<void>;
  close(): Promise<void>;
}

/**
 * Serves /metrics and /healthz. The bucket is read in the background every interval and the
 * last good read is kept: a scrape only renders that cache, so a slow or stopped store never
 * blocks it; it shows instead as vrb_status_stale 1 and a growing refresh-error counter.
 */
export async function startExporter(opts: ExporterOptions): Promise<RunningExporter> {
  const progress = opts.progress ?? silentProgress;
  const refreshTimeoutMs = opts.refreshTimeoutMs ?? Math.max(opts.intervalMs, 10_000);
  const staleAfterMs = opts.staleAfterMs ?? 2 * opts.intervalMs;
  let cache: ClusterStatus[] = [];
  const state: ExporterState = { stale: true, refreshErrors: 0 };
  let inFlight: Promise<void> | undefined;

  // Every refresh lists every snapshot; only the manifests it has not read before are read, and
  // only the locks that could have changed since (not those under COMPLIANCE until later).
  const manifestCache: ManifestCache = new Map();
  const complianceLocks: ComplianceLockCache = new Map();
  const readAll = (signal: AbortSignal): Promise<ClusterStatus[]> =>
    readClusterStatuses({ store: opts.store, every: opts.every, abortSignal: signal, manifestCache, complianceLocks });

  const refresh = (): Promise<void> => {
    if (inFlight) return inFlight; // one read at a time; a slow one is not stacked up
    const started = Date.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new OperationError(`reading ${opts.store.url(opts.store.prefix)} took longer than ${refreshTimeoutMs / 1000}s`));
      }, refreshTimeoutMs);
    });
    inFlight = Promise.race([readAll(abort.signal), deadline])
      .then((statuses) => {
        cache = statuses;
        state.lastRefresh = new Date();
        state.lastRefreshDurationSeconds = (Date.now() - started) / 1000;
      })
      .catch((err: unknown) => {
        state.refreshErrors++;
        progress.warn(`exporter: reading the bucket failed (serving the last good read): ${opts.store.describeError(err)}`);
      })
      .finally(() => {
        clearTimeout(timer);
        inFlight = undefined;
      });
    return inFlight;
  };

  const currentState = (): ExporterState => ({
    ...state,
    stale: !state.lastRefresh || Date.now() - state.lastRefresh.getTime() > staleAfterMs,
  });

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      renderMetrics(cache, currentState()).then(
        ({ text, contentType }) => res.writeHead(200, { "Content-Type": contentType }).end(text),
        (err: unknown) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`rendering failed: ${String(err)}\n`),
      );
      return;
    }
    if (path === "/healthz") {
      // The process serves, so it is alive; staleness is reported, not failed (S3 being down is no reason to restart us).
      const s = currentState();
      res
        .writeHead(200, { "Content-Type": "application/json" })
        .end(JSON.stringify({ ok: true, stale: s.stale, lastRefresh: s.lastRefresh?.toISOString(), clusters: cache.length, refreshErrors: s.refreshErrors }) + "\n");
      return;
    }
    res.writeHead(404, { "Content-Type": "text/plain" }).end("vrb exporter: try /metrics or /healthz\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const firstRefresh = refresh();
  const interval = setInterval(() => void refresh(), opts.intervalMs);
  return {
    url: `http://${opts.host.includes(":") ? `[${opts.host}]` : opts.host}:${port}`,
    firstRefresh,
    async close() {
      clearInterval(interval);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
