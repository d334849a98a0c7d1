import { parseDuration } from "../schedule.js";
import { lastPassedDrillAt } from "./drills.js";
import { RUN_KINDS } from "./record.js";
import type { ClusterStatus } from "./report.js";

/** How fresh the rendered data is: only the exporter knows; `vrb status --prometheus` reads live. */
export interface ExporterState {
  /** When the listing and every cluster were last read from the bucket successfully. */
  lastRefresh?: Date;
  /** True when any data served (the listing, a cluster's) is older than the exporter's staleness limit. */
  stale: boolean;
  /** Each cluster listed: true when its data is older than the staleness limit, or it was never read. */
  clusterStale: Record<string, boolean>;
  refreshErrors: number;
  lastRefreshDurationSeconds?: number;
}

/** Every metric name the exporter serves, with its help text (the alert rules may use only these). */
export const METRICS = {
  vrb_last_success_timestamp_seconds: "Unix time of the start of the last successful run, per operation (backup, prune, restore, drill).",
  vrb_last_attempt_timestamp_seconds: "Unix time of the start of the last run, per operation.",
  vrb_consecutive_failures: "Failed runs since the last success, per operation.",
  vrb_newest_good_snapshot_age_seconds: "Age of the newest good snapshot (manifest present and matching).",
  vrb_newest_good_snapshot_timestamp_seconds: "Unix time the newest good snapshot was taken.",
  vrb_newest_good_snapshot_bytes: "Size of the newest good snapshot.",
  vrb_newest_good_snapshot_raft_index: "Raft index of the newest good snapshot.",
  vrb_good_snapshots: "Good snapshots of the cluster in the bucket.",
  vrb_locked_snapshots: "Good snapshots under an object lock (retention in the future, or a legal hold).",
  vrb_invalid_snapshots: "Damaged snapshots of the cluster: manifest present, object not matching it (truncated, replaced) or manifest unreadable.",
  vrb_incomplete_uploads: "Unfinished uploads in the cluster's folder older than the threshold (default 24h): orphans of killed or failed runs.",
  vrb_last_drill_success: "1 when the last restore drill passed, 0 when it failed.",
  vrb_last_drill_rto_seconds: "Recovery time measured by the last drill (passed or failed; vrb_last_drill_success says which).",
  vrb_last_drill_timestamp_seconds: "Unix time of the start of the last drill.",
  vrb_last_passing_drill_timestamp_seconds: "Unix time of the start of the newest drill that passed.",
  vrb_last_skipped_drill_timestamp_seconds: "Unix time of the newest drill that could not run here (no binary, no disk space, a keys file missing); vrb status says why.",
  vrb_drill_window_seconds: "The scheduled drills' window (policy drill.every): a drill is due when none passed within it.",
  vrb_copy_last_success_timestamp_seconds: "Unix time of the start of the last backup that wrote this copy (policy `copies`) completely, per destination.",
  vrb_copy_consecutive_failures: "Backups in a row whose copy to this destination failed (0 after a good copy), per destination.",
  vrb_rpo_ok: "1 when the newest good snapshot lies in the current or previous schedule window, else 0.",
  vrb_rpo_schedule_seconds: "The schedule window (schedule.every) the RPO verdict uses.",
  vrb_status_stale: "1 when the exporter serves data older than its staleness limit (the store slow or failing, for every cluster or some: see vrb_status_cluster_stale), else 0.",
  vrb_status_cluster_stale:
    "1 when the exporter serves this cluster's data older than its staleness limit, or could never read it (the store's error is on the exporter's stderr), else 0.",
  vrb_status_last_refresh_timestamp_seconds: "Unix time the exporter last read the bucket successfully (the listing and every cluster).",
  vrb_status_refresh_errors_total: "Reads of the bucket that failed or timed out, wholly or for some cluster, since the exporter started.",
  vrb_status_refresh_duration_seconds: "Duration of the exporter's last successful read of the bucket.",
  vrb_status_clusters: "Clusters found under the prefix.",
} as const;
export type MetricName = keyof typeof METRICS;

const seconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);

/** Renders the status of every cluster in the Prometheus text exposition format (prom-client). */
/** Without `state` (`vrb status --prometheus`, a one-off read) the exporter's own vrb_status_* metrics are left out. */
export async function renderMetrics(statuses: ClusterStatus[], state?: ExporterState, now: Date = new Date()): Promise<{ text: string; contentType: string }> {
  // Loaded here, not at the top: every CLI start (a backup too) would pay for it otherwise.
  const { Counter, Gauge, Registry } = await import("prom-client");
  const registry = new Registry();
  const gauge = (name: MetricName, labelNames: string[] = []) => new Gauge({ name, help: METRICS[name], labelNames, registers: [registry] });
  const perOp = ["cluster", "operation"];
  const g = {
    lastSuccess: gauge("vrb_last_success_timestamp_seconds", perOp),
    lastAttempt: gauge("vrb_last_attempt_timestamp_seconds", perOp),
    failures: gauge("vrb_consecutive_failures", perOp),
    age: gauge("vrb_newest_good_snapshot_age_seconds", ["cluster"]),
    takenAt: gauge("vrb_newest_good_snapshot_timestamp_seconds", ["cluster"]),
    bytes: gauge("vrb_newest_good_snapshot_bytes", ["cluster"]),
    index: gauge("vrb_newest_good_snapshot_raft_index", ["cluster"]),
    good: gauge("vrb_good_snapshots", ["cluster"]),
    locked: gauge("vrb_locked_snapshots", ["cluster"]),
    invalid: gauge("vrb_invalid_snapshots", ["cluster"]),
    incompleteUploads: gauge("vrb_incomplete_uploads", ["cluster"]),
    drillOk: gauge("vrb_last_drill_success", ["cluster"]),
    drillRto: gauge("vrb_last_drill_rto_seconds", ["cluster"]),
    drillAt: gauge("vrb_last_drill_timestamp_seconds", ["cluster"]),
    drillPassedAt: gauge("vrb_last_passing_drill_timestamp_seconds", ["cluster"]),
    drillSkippedAt: gauge("vrb_last_skipped_drill_timestamp_seconds", ["cluster"]),
    drillWindow: gauge("vrb_drill_window_seconds", ["cluster"]),
    copyLastSuccess: gauge("vrb_copy_last_success_timestamp_seconds", ["cluster", "destination"]),
    copyFailures: gauge("vrb_copy_consecutive_failures", ["cluster", "destination"]),
    rpoOk: gauge("vrb_rpo_ok", ["cluster"]),
    rpoEvery: gauge("vrb_rpo_schedule_seconds", ["cluster"]),
    clusters: gauge("vrb_status_clusters"),
  };
  for (const s of statuses) {
    const cluster = s.cluster;
    for (const operation of RUN_KINDS) {
      const op = s.operations[operation];
      if (!op) continue;
      g.lastAttempt.set({ cluster, operation }, seconds(op.lastAttempt)!);
      if (op.lastSuccess) g.lastSuccess.set({ cluster, operation }, seconds(op.lastSuccess)!);
      g.failures.set({ cluster, operation }, op.consecutiveFailures);
    }
    if (s.newestGood) {
      // Age from the render time, so a cached read still ages between refreshes.
      g.age.set({ cluster }, Math.max(0, Math.round(now.getTime() / 1000 - seconds(s.newestGood.takenAt)!)));
      g.takenAt.set({ cluster }, seconds(s.newestGood.takenAt)!);
      g.bytes.set({ cluster }, s.newestGood.bytes);
      g.index.set({ cluster }, s.newestGood.raftIndex);
    }
    g.good.set({ cluster }, s.goodSnapshots);
    g.locked.set({ cluster }, s.lockedSnapshots);
    g.invalid.set({ cluster }, s.invalidSnapshots ?? 0);
    if (s.incompleteUploads !== undefined) g.incompleteUploads.set({ cluster }, s.incompleteUploads);
    if (s.lastDrill) {
      g.drillOk.set({ cluster }, s.lastDrill.ok ? 1 : 0);
      g.drillAt.set({ cluster }, seconds(s.lastDrill.at)!);
      if (s.lastDrill.rtoSeconds !== undefined) g.drillRto.set({ cluster }, s.lastDrill.rtoSeconds);
    }
    const passedAt = lastPassedDrillAt(s);
    if (passedAt) g.drillPassedAt.set({ cluster }, seconds(passedAt)!);
    if (s.lastSkippedDrill) g.drillSkippedAt.set({ cluster }, seconds(s.lastSkippedDrill.at)!);
    if (s.drillEvery) g.drillWindow.set({ cluster }, parseDuration(s.drillEvery) / 1000);
    for (const [destination, c] of Object.entries(s.copies ?? {})) {
      if (c.lastSuccess) g.copyLastSuccess.set({ cluster, destination }, seconds(c.lastSuccess)!);
      g.copyFailures.set({ cluster, destination }, c.consecutiveFailures);
    }
    g.rpoOk.set({ cluster }, s.rpo.ok ? 1 : 0);
    g.rpoEvery.set({ cluster }, parseDuration(s.rpo.every) / 1000);
  }
  // The exporter's count includes the clusters it could never read (they have no status to render).
  g.clusters.set(state ? Object.keys(state.clusterStale).length : statuses.length);
  if (state) {
    const exporter = {
      stale: gauge("vrb_status_stale"),
      clusterStale: gauge("vrb_status_cluster_stale", ["cluster"]),
      lastRefresh: gauge("vrb_status_last_refresh_timestamp_seconds"),
      refreshErrors: new Counter({ name: "vrb_status_refresh_errors_total", help: METRICS.vrb_status_refresh_errors_total, registers: [registry] }),
      refreshDuration: gauge("vrb_status_refresh_duration_seconds"),
    };
    exporter.stale.set(state.stale ? 1 : 0);
    for (const [cluster, stale] of Object.entries(state.clusterStale)) exporter.clusterStale.set({ cluster }, stale ? 1 : 0);
    if (state.lastRefresh) exporter.lastRefresh.set(state.lastRefresh.getTime() / 1000);
    exporter.refreshErrors.inc(state.refreshErrors);
    if (state.lastRefreshDurationSeconds !== undefined) exporter.refreshDuration.set(state.lastRefreshDurationSeconds);
  }
  return { text: await registry.metrics(), contentType: registry.contentType };
}
