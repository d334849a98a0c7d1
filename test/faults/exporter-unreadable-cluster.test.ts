import { spawn, type ChildProcess } from "node:child_process";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, describe, expect, it } from "vitest";
import { localS3Client } from "../../devenv/s3server.js";
import { startExporter } from "../../engine/index.js";
import { cliEnv, runVrb, s3StoreOn, sharedEnvOf, vrbBin } from "../support/env.js";
import { FaultProxy, type RequestMatch } from "../support/fault-proxy.js";

// A fleet's monitoring must not go blind because one cluster's folder cannot be read (a role or
// bucket policy that does not cover a new team's cluster, a prefix the store keeps throttling).
// Real backups of three clusters on SeaweedFS; a proxy in front answers 403 AccessDenied to every
// request on one cluster's folder, as S3 does to a role whose policy leaves that folder out.
// The exporter and vrb status read through the proxy. Only the store matters: OpenBao makes the snapshots.
const env = sharedEnvOf("openbao");
const run = Date.now().toString(36);
const prefix = `fleet-${run}/`;
const [A, B, C] = ["team-a", "team-b", "team-c"];

/** Every request on `cluster`'s folder: its objects, and listings under it. */
const onFolderOf =
  (cluster: string): RequestMatch =>
  (_req, url) =>
    decodeURIComponent(url.pathname).includes(`/${prefix}${cluster}/`) || (url.searchParams.get("prefix") ?? "").startsWith(`${prefix}${cluster}/`);
const denied = (cluster: string) => ({ match: onFolderOf(cluster), share: 1, fault: { kind: "s3-error" as const, status: 403, code: "AccessDenied", message: "Access Denied" } });

async function backup(cluster: string): Promise<void> {
  const r = await runVrb(["backup", "--cluster", cluster, "--prefix", prefix, "--retries", "0", "--json"], cliEnv(env));
  expect(r.code, r.stderr).toBe(0);
}

async function scrape(url: string) {
  const families = parsePrometheusTextFormat(await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2_000) })).text());
  return (name: string, labels: Record<string, string> = {}): number | undefined => {
    const sample = families.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return sample?.value === undefined ? undefined : Number(sample.value);
  };
}

/** Scrapes until `done` holds (each refresh is 1 s apart), then returns that scrape. */
async function scrapeUntil(url: string, what: string, done: (m: Awaited<ReturnType<typeof scrape>>) => boolean) {
  for (let i = 0; i < 60; i++) {
    const m = await scrape(url);
    if (done(m)) return m;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the exporter never showed ${what}`);
}

let proxy: FaultProxy | undefined;
let exporter: ChildProcess | undefined;
afterAll(async () => {
  exporter?.kill("SIGTERM");
  await proxy?.stop();
});

describe("one cluster the reader may not read (SeaweedFS behind a proxy answering 403 on its folder)", () => {
  it("vrb status --all-clusters prints the others and names it (exit 1); the exporter keeps serving the others, and that cluster's last good read marked stale", async () => {
    for (const cluster of [A, B, C]) await backup(cluster);
    proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [denied(C)];
    const throughProxy = cliEnv(env, { AWS_ENDPOINT_URL_S3: proxy.url });

    const status = await runVrb(["status", "--all-clusters", "--prefix", prefix, "--json"], throughProxy);
    expect(status.code, status.stderr).toBe(1);
    const report = JSON.parse(status.stdout) as { ok: boolean; clusters: { cluster: string; goodSnapshots: number }[]; unreadable?: { cluster: string; error: string }[] };
    expect(report.ok).toBe(false);
    expect(report.clusters.map((c) => [c.cluster, c.goodSnapshots])).toEqual([
      [A, 1],
      [B, 1],
    ]);
    expect(report.unreadable).toEqual([{ cluster: C, error: expect.stringMatching(/Access ?Denied/) }]);
    expect(status.stderr).toMatch(new RegExp(`vrb: cluster ${C} could not be read: .*Access ?Denied`));
    const text = await runVrb(["status", "--all-clusters", "--prefix", prefix], throughProxy);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`cluster ${A} .*\\n[^]*cluster ${B} [^]*cluster ${C}  COULD NOT BE READ: .*Access ?Denied`));

    exporter = spawn(process.execPath, [vrbBin(), "exporter", "--prefix", prefix, "--listen", "127.0.0.1:0", "--interval", "1s"], {
      env: { ...process.env, ...throughProxy },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const url = await new Promise<string>((resolve, reject) => {
      exporter!.stderr!.on("data", (d: Buffer) => {
        stderr += d.toString();
        const m = /serving (http:\/\/\S+)\/metrics/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      exporter!.on("exit", (code) => reject(new Error(`exporter exited ${code}: ${stderr}`)));
    });

    // The two readable clusters are served; the third is counted and stale, with no data to show.
    let m = await scrapeUntil(url, `${A} and ${B} read`, (v) => v("vrb_status_cluster_stale", { cluster: A }) === 0 && v("vrb_status_cluster_stale", { cluster: B }) === 0);
    expect(m("vrb_good_snapshots", { cluster: A })).toBe(1);
    expect(m("vrb_good_snapshots", { cluster: B })).toBe(1);
    expect(m("vrb_status_cluster_stale", { cluster: C })).toBe(1);
    expect(m("vrb_good_snapshots", { cluster: C })).toBeUndefined();
    expect(m("vrb_status_clusters")).toBe(3);
    expect(m("vrb_status_stale")).toBe(1);
    expect(stderr).toMatch(new RegExp(`reading 1 of 3 cluster\\(s\\) failed \\(serving their last good read\\): ${C}: .*Access ?Denied`));

    // B's folder becomes unreadable too, and both A and B take a new backup: A's is seen, B keeps
    // its last good read (one snapshot) and turns stale once that is older than two intervals.
    proxy.rules = [denied(B), denied(C)];
    await backup(A);
    await backup(B);
    m = await scrapeUntil(
      url,
      `${A}'s second snapshot and ${B} stale`,
      (v) => v("vrb_good_snapshots", { cluster: A }) === 2 && v("vrb_status_cluster_stale", { cluster: B }) === 1,
    );
    expect(m("vrb_status_cluster_stale", { cluster: A })).toBe(0);
    expect(m("vrb_good_snapshots", { cluster: B })).toBe(1);
    expect(m("vrb_consecutive_failures", { cluster: B, operation: "backup" })).toBe(0);
    const health = (await (await fetch(`${url}/healthz`)).json()) as { stale: boolean; clusters: number; unreadableClusters: string[] };
    expect(health).toMatchObject({ stale: true, clusters: 3, unreadableClusters: [B, C] });

    // Access is granted again: every cluster is current, nothing stale.
    proxy.rules = [];
    m = await scrapeUntil(url, "every cluster current", (v) => v("vrb_status_stale") === 0);
    expect([A, B, C].map((cluster) => [m("vrb_good_snapshots", { cluster }), m("vrb_status_cluster_stale", { cluster })])).toEqual([
      [2, 0],
      [2, 0],
      [1, 0],
    ]);
  }, 180_000);

  it("a cluster whose reads hang past the refresh's deadline does not hold the others back: they are served current, it is named stale", async () => {
    // Every request on B's folder held 8 s; the exporter's refresh gives up after 2 s.
    proxy!.rules = [{ match: onFolderOf(B), share: 1, fault: { kind: "delay", ms: 8_000 } }];
    const client = localS3Client({ ...env.s3!, endpoint: proxy!.url });
    const warnings: string[] = [];
    const running = await startExporter({
      store: s3StoreOn(client, env.bucket!, prefix),
      every: "1h",
      host: "127.0.0.1",
      port: 0,
      intervalMs: 600_000,
      refreshTimeoutMs: 2_000,
      progress: { info() {}, warn: (m) => warnings.push(m) },
    });
    try {
      await running.firstRefresh;
      const m = await scrape(running.url);
      expect([A, C].map((cluster) => [m("vrb_good_snapshots", { cluster }), m("vrb_status_cluster_stale", { cluster })])).toEqual([
        [2, 0],
        [1, 0],
      ]);
      expect(m("vrb_status_cluster_stale", { cluster: B })).toBe(1);
      expect(m("vrb_good_snapshots", { cluster: B })).toBeUndefined();
      expect(m("vrb_status_refresh_errors_total")).toBe(1);
      expect(warnings).toEqual([
        expect.stringMatching(new RegExp(`reading 1 of 3 cluster\\(s\\) failed \\(serving their last good read\\): ${B}: reading .* took longer than 2s`)),
      ]);
    } finally {
      await running.close();
      client.destroy();
    }
  }, 60_000);
});
