import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { checkStatus, renderMetrics, type ClusterStatus } from "../../engine/index.js";
import { METRICS } from "../../engine/status/metrics.js";
import { applyRun, HISTORY_LIMIT, type RunOutcome, type StatusRecord } from "../../engine/status/record.js";
import { packageRoot } from "../../engine/package-info.js";

const now = new Date("2026-05-01T12:00:00Z");
const status: ClusterStatus = {
  cluster: "prod",
  location: "s3://b/p/prod/vrb-status.json",
  recorded: true,
  consecutiveFailures: 2,
  operations: {
    backup: { lastAttempt: "2026-05-01T11:00:00.000Z", lastAttemptOk: false, lastSuccess: "2026-05-01T06:00:00.000Z", consecutiveFailures: 2, runs: 9, lastDurationMs: 1000 },
    prune: { lastAttempt: "2026-05-01T06:05:00.000Z", lastAttemptOk: true, lastSuccess: "2026-05-01T06:05:00.000Z", consecutiveFailures: 0, runs: 3, lastDurationMs: 10 },
  },
  newestGood: { key: "p/prod/x.snap", takenAt: "2026-05-01T06:00:01.000Z", bytes: 4096, raftIndex: 77, ageSeconds: 21599 },
  goodSnapshots: 5,
  lockedSnapshots: 4,
  incompleteUploads: 2,
  lastDrill: { at: "2026-04-20T00:00:00.000Z", ok: true, rtoSeconds: 42.5, snapshot: "s3://b/p/prod/x.snap" },
  lastSkippedDrill: { at: "2026-04-27T00:00:00.000Z", ok: false, skipped: "no free disk space", key: "p/prod/y.snap" },
  drillEvery: "7d",
  rpo: { ok: true, every: "6h", oldestAcceptable: "2026-05-01T06:00:00.000Z", message: "" },
  history: [],
};

describe("metrics (prom-client exposition)", () => {
  it("serves every documented metric, with the cluster label, values from the status", async () => {
    const { text, contentType } = await renderMetrics(
      [status],
      { stale: true, clusterStale: { prod: false, "never-read": true }, refreshErrors: 3, lastRefresh: now, lastRefreshDurationSeconds: 0.2 },
      now,
    );
    expect(contentType).toMatch(/^text\/plain/);
    const families = parsePrometheusTextFormat(text);
    expect(families.map((f) => f.name).sort()).toEqual(Object.keys(METRICS).sort());
    const v = (name: string, labels: Record<string, string> = {}) =>
      Number(families.find((f) => f.name === name)!.metrics.find((m) => Object.entries(labels).every(([k, val]) => m.labels?.[k] === val))!.value);
    expect(v("vrb_consecutive_failures", { cluster: "prod", operation: "backup" })).toBe(2);
    expect(v("vrb_last_success_timestamp_seconds", { cluster: "prod", operation: "backup" })).toBe(Date.parse("2026-05-01T06:00:00Z") / 1000);
    expect(v("vrb_newest_good_snapshot_age_seconds", { cluster: "prod" })).toBe(21599);
    expect(v("vrb_locked_snapshots", { cluster: "prod" })).toBe(4);
    expect(v("vrb_incomplete_uploads", { cluster: "prod" })).toBe(2);
    expect(v("vrb_last_drill_rto_seconds", { cluster: "prod" })).toBe(42.5);
    expect(v("vrb_rpo_schedule_seconds", { cluster: "prod" })).toBe(21600);
    // No lastPassedDrill in the fixture (an older record): the passing drill is the last drill, which passed.
    expect(v("vrb_last_passing_drill_timestamp_seconds", { cluster: "prod" })).toBe(Date.parse("2026-04-20T00:00:00Z") / 1000);
    expect(v("vrb_last_skipped_drill_timestamp_seconds", { cluster: "prod" })).toBe(Date.parse("2026-04-27T00:00:00Z") / 1000);
    expect(v("vrb_drill_window_seconds", { cluster: "prod" })).toBe(7 * 86400);
    expect(v("vrb_status_refresh_errors_total")).toBe(3);
    // A cluster the exporter could never read has no status, but is counted and shown stale.
    expect(v("vrb_status_cluster_stale", { cluster: "prod" })).toBe(0);
    expect(v("vrb_status_cluster_stale", { cluster: "never-read" })).toBe(1);
    expect(v("vrb_status_clusters")).toBe(2);
    expect(v("vrb_status_stale")).toBe(1);
    expect(families.find((f) => f.name === "vrb_status_refresh_errors_total")!.type).toBe("COUNTER");
  });

  it("vrb status --prometheus (no exporter state) leaves the exporter's own metrics out", async () => {
    const names = parsePrometheusTextFormat((await renderMetrics([status], undefined, now)).text).map((f) => f.name);
    expect(names).toContain("vrb_rpo_ok");
    expect(names.filter((n) => n.startsWith("vrb_status_") && n !== "vrb_status_clusters")).toEqual([]);
  });
});

describe("alert rules (deploy/prometheus/vrb-alerts.yaml)", () => {
  const doc = parseYaml(readFileSync(join(packageRoot(), "deploy", "prometheus", "vrb-alerts.yaml"), "utf8")) as {
    groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: { severity?: string }; annotations?: { summary?: string } }[] }[];
  };
  const rules = doc.groups.flatMap((g) => g.rules);

  it("is a rules file: named alerts with an expr, a severity and a summary", () => {
    expect(rules.length).toBeGreaterThan(5);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^Vrb[A-Za-z]+$/);
      expect(["warning", "critical"]).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      if (r.for) expect(r.for).toMatch(/^\d+[smh]$/);
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it("every expr is valid PromQL and uses only metrics the exporter serves", () => {
    const served = new Set(Object.keys(METRICS));
    for (const r of rules) {
      const tree = parser.parse(r.expr);
      const names: string[] = [];
      let error = false;
      tree.iterate({
        enter: (node) => {
          if (node.type.isError) error = true;
          if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") names.push(r.expr.slice(node.from, node.to));
        },
      });
      expect(error, `${r.alert}: ${r.expr}`).toBe(false);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(served.has(n), `${r.alert} uses ${n}`).toBe(true);
    }
  });
});

const statusWithDrillWindow = status;

describe("status record (applyRun) and the check", () => {
  const run = (ok: boolean, at: string, extra: Partial<RunOutcome> = {}): RunOutcome => ({
    id: at,
    kind: "backup",
    startedAt: new Date(at),
    durationMs: 5,
    ok,
    exitCode: ok ? 0 : 1,
    error: ok ? undefined : { stage: "upload", message: "boom", exitCode: 1, kind: "OperationError" },
    toolVersion: "9.9.9",
    ...extra,
  });

  it("counts failures since the last success, keeps the last error, resets on success", () => {
    let r: StatusRecord | undefined;
    r = applyRun(r, "c", run(true, "2026-05-01T00:00:00Z", { snapshot: { key: "k1", takenAt: "2026-05-01T00:00:01Z", bytes: 1, raftIndex: 1 } }));
    r = applyRun(r, "c", run(false, "2026-05-01T01:00:00Z"));
    r = applyRun(r, "c", run(false, "2026-05-01T02:00:00Z"));
    expect(r.operations.backup).toMatchObject({ consecutiveFailures: 2, runs: 3, lastSuccess: "2026-05-01T00:00:00.000Z", lastAttemptOk: false, lastError: { stage: "upload" } });
    expect(r.newestGood!.key).toBe("k1");
    r = applyRun(r, "c", run(true, "2026-05-01T03:00:00Z", { snapshot: { key: "k0", takenAt: "2026-04-30T00:00:00Z", bytes: 1, raftIndex: 1 } }));
    expect(r.operations.backup!.consecutiveFailures).toBe(0);
    // A late-finishing run with an older snapshot does not replace the newer one.
    expect(r.newestGood!.key).toBe("k1");
    for (let i = 0; i < HISTORY_LIMIT + 5; i++) r = applyRun(r, "c", run(true, new Date(Date.parse("2026-05-02T00:00:00Z") + i * 1000).toISOString()));
    expect(r.history).toHaveLength(HISTORY_LIMIT);
    expect(r.operations.backup!.runs).toBe(4 + HISTORY_LIMIT + 5);
  });

  it("--check: failures against --max-failures, a missing, failed or old drill against --max-drill-age", () => {
    // Manual drills only (no drill.every recorded): drills are judged by --max-drill-age alone.
    const status = { ...statusWithDrillWindow, drillEvery: undefined, lastSkippedDrill: undefined };
    expect(checkStatus(status, { now }).problems).toEqual([expect.stringMatching(/^backup: the last 2 attempt\(s\) failed/)]);
    expect(checkStatus(status, { now, maxFailures: 3 }).ok).toBe(true);
    expect(checkStatus(status, { now, maxFailures: 3, maxDrillAge: "30d" }).ok).toBe(true);
    expect(checkStatus(status, { now, maxFailures: 3, maxDrillAge: "7d" }).problems).toEqual([expect.stringMatching(/older than --max-drill-age 7d/)]);
    expect(checkStatus({ ...status, lastDrill: undefined }, { now, maxFailures: 3, maxDrillAge: "7d" }).problems).toEqual(["no drill recorded (--max-drill-age 7d)"]);
    expect(checkStatus({ ...status, rpo: { ...status.rpo, ok: false, message: "too old" } }, { now, maxFailures: 3 }).problems).toEqual(["RPO missed: too old"]);
  });
});
