import { createServer, type Server } from "node:http";
import { OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import type { ObjectStore } from "../storage/object-store.js";
import { renderMetrics, type ExporterState } from "./metrics.js";
import type { ManifestCache } from "../catalogue/snapshot-store.js";
import { listClusters, readEachClusterStatus, type ClusterRead, type ClusterStatus, type ComplianceLockCache } from "./report.js";

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

/** What the exporter last read of one cluster. */
interface ClusterEntry {
  /** Its last good read (none yet: its first read failed). */
  status?: ClusterStatus;
  readAt?: Date;
  /** Why the last read failed (absent when it succeeded). */
  error?: string;
}

/**
 * Serves /metrics and /healthz. The bucket is read in the background every interval and the
 * last good read of each cluster is kept: a scrape only renders that cache, so a slow or stopped
 * store never blocks it; it shows instead as vrb_status_stale 1 and a growing refresh-error
 * counter. Each cluster is read on its own: one that cannot be read keeps its last good read and
 * shows as vrb_status_cluster_stale{cluster} 1 once that is too old, the others stay current.
 */
export async function startExporter(opts: ExporterOptions): Promise<RunningExporter> {
  const progress = opts.progress ?? silentProgress;
  const refreshTimeoutMs = opts.refreshTimeoutMs ?? Math.max(opts.intervalMs, 10_000);
  const staleAfterMs = opts.staleAfterMs ?? 2 * opts.intervalMs;
  // By cluster, in the listing's (name) order.
  let clusters = new Map<string, ClusterEntry>();
  /** The last refresh that read the listing and every cluster. */
  let lastRefresh: { at: Date; durationSeconds: number } | undefined;
  let lastListing: Date | undefined;
  let refreshErrors = 0;
  let inFlight: Promise<void> | undefined;

  // Every refresh lists every snapshot; only the manifests it has not read before are read, and
  // only the locks that could have changed since (not those under COMPLIANCE until later).
  const manifestCache: ManifestCache = new Map();
  const complianceLocks: ComplianceLockCache = new Map();
  const where = opts.store.url(opts.store.prefix);

  const refresh = (): Promise<void> => {
    if (inFlight) return inFlight; // one read at a time; a slow one is not stacked up
    const started = Date.now();
    const abort = new AbortController();
    const tooLong = new OperationError(`reading ${where} took longer than ${refreshTimeoutMs / 1000}s`);
    let timer: NodeJS.Timeout | undefined;
    // A store that ignores the abort must not hold the refresh either: whatever was read by then counts.
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        abort.abort(tooLong);
        resolve();
      }, refreshTimeoutMs);
    });
    let names: string[] | undefined;
    let listingFailure: unknown = tooLong;
    const reads = new Map<string, ClusterRead>();
    const readAll = async (): Promise<void> => {
      try {
        names = await listClusters(opts.store, abort.signal);
      } catch (err) {
        if (!abort.signal.aborted) listingFailure = err;
        return;
      }
      const query = { store: opts.store, clusters: names, every: opts.every, abortSignal: abort.signal, manifestCache, complianceLocks };
      // Rejects only at the deadline; the clusters not read by then are counted as failed below.
      await readEachClusterStatus(query, (read) => reads.set(read.cluster, read)).catch(() => undefined);
    };
    const settle = (): void => {
      const now = new Date();
      if (!names) {
        refreshErrors++;
        progress.warn(`exporter: listing the clusters under ${where} failed (serving the last good read): ${opts.store.describeError(listingFailure)}`);
        return;
      }
      lastListing = now;
      const next = new Map<string, ClusterEntry>();
      const failed: string[] = [];
      for (const cluster of names) {
        const read = reads.get(cluster);
        if (read?.status) next.set(cluster, { status: read.status, readAt: now });
        else {
          const error = opts.store.describeError(read ? read.error : tooLong);
          next.set(cluster, { ...clusters.get(cluster), error });
          failed.push(`${cluster}: ${error}`);
        }
      }
      clusters = next;
      if (!failed.length) {
        lastRefresh = { at: now, durationSeconds: (Date.now() - started) / 1000 };
        return;
      }
      refreshErrors++;
      progress.warn(`exporter: reading ${failed.length} of ${names.length} cluster(s) failed (serving their last good read): ${failed.join("; ")}`);
    };
    inFlight = Promise.race([readAll(), deadline])
      .then(settle)
      .finally(() => {
        clearTimeout(timer);
        inFlight = undefined;
      });
    return inFlight;
  };

  const currentState = (): ExporterState => {
    const tooOld = (at: Date | undefined) => !at || Date.now() - at.getTime() > staleAfterMs;
    const clusterStale = Object.fromEntries([...clusters].map(([cluster, entry]) => [cluster, tooOld(entry.readAt)]));
    return {
      stale: tooOld(lastListing) || Object.values(clusterStale).some(Boolean),
      clusterStale,
      refreshErrors,
      lastRefresh: lastRefresh?.at,
      lastRefreshDurationSeconds: lastRefresh?.durationSeconds,
    };
  };
  const served = (): ClusterStatus[] => [...clusters.values()].flatMap((entry) => (entry.status ? [entry.status] : []));

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      renderMetrics(served(), currentState()).then(
        ({ text, contentType }) => res.writeHead(200, { "Content-Type": contentType }).end(text),
        (err: unknown) => res.writeHead(500, { "Content-Type": "text/plain" }).end(`rendering failed: ${String(err)}\n`),
      );
      return;
    }
    if (path === "/healthz") {
      // The process serves, so it is alive; staleness is reported, not failed (S3 being down is no reason to restart us).
      const s = currentState();
      res.writeHead(200, { "Content-Type": "application/json" }).end(
        JSON.stringify({
          ok: true,
          stale: s.stale,
          lastRefresh: s.lastRefresh?.toISOString(),
          clusters: clusters.size,
          unreadableClusters: [...clusters].flatMap(([cluster, entry]) => (entry.error ? [cluster] : [])),
          refreshErrors: s.refreshErrors,
        }) + "\n",
      );
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
