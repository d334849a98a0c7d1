import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, describe, expect, it } from "vitest";
import { recordRun, type BackupReport, type ClusterStatus, type DrillReport } from "../../engine/index.js";
import { StatusStore } from "../../engine/status/status-store.js";
import { freePort } from "../../engine/throwaway/ports.js";
import { createLockedBucket, localS3Client, s3ServerKindFromEnv, startS3Server, stopS3Server, type LocalS3Server } from "../../devenv/s3server.js";
import { packageInfo } from "../../engine/package-info.js";
import { cliEnv, runVrb, s3For, s3StoreOn, sharedEnv, tempDir, vrbBin } from "../support/env.js";

const env = sharedEnv();
const s3 = s3For(env);
const bucket = env.bucket!;
const prefix = `status-${Date.now().toString(36)}/`;
const cluster = "st-life";
const base = (name = cluster) => ["--cluster", name, "--prefix", prefix];

type StatusJson = ClusterStatus & { ok: boolean; check?: { ok: boolean; problems: string[] } };
async function statusOf(args: string[] = [], extraEnv: Record<string, string> = {}): Promise<{ code: number; json: StatusJson; stderr: string }> {
  const r = await runVrb(["status", ...base(), "--json", ...args], cliEnv(env, extraEnv));
  return { code: r.code, json: JSON.parse(r.stdout) as StatusJson, stderr: r.stderr };
}

async function backup(name = cluster, extra: string[] = [], extraEnv: Record<string, string> = {}) {
  return runVrb(["backup", ...base(name), "--retries", "0", "--json", ...extra], cliEnv(env, extraEnv));
}

describe("status record: backups, failures, check, reset", () => {
  let good: BackupReport;
  // The bucket is missing: its record cannot be written there (the status object lives in that
  // bucket), so it changes nothing on record and runs beside the other tests.
  const missing = backup(cluster, ["--bucket", "vrb-status-no-such-bucket"]);

  it("records a good backup, two failures, and --check says why; a good backup resets the count", async () => {
    const first = await backup();
    expect(first.code, first.stderr).toBe(0);
    good = JSON.parse(first.stdout) as BackupReport;

    // Vault unreachable: a closed port. The run fails with its own message and exit code.
    const closed = await freePort();
    const unreachable = await backup(cluster, ["--vault-addr", `http://127.0.0.1:${closed}`, "--leader-wait", "0"]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/vrb: error/);
    expect(unreachable.stderr).toContain(String(closed));
    expect(unreachable.stderr).not.toMatch(/could not record/);

    // A second recordable failure: Vault answers, but the token is not accepted.
    const denied = await backup(cluster, [], { VAULT_TOKEN: "s.not-a-real-token", BAO_TOKEN: "s.not-a-real-token" });
    expect(denied.code, denied.stderr).not.toBe(0);
    const deniedStage = /\[stage: ([^\]]+)\]/.exec(denied.stderr)?.[1];

    const { code, json } = await statusOf();
    expect(code).toBe(0);
    expect(json.cluster).toBe(cluster);
    expect(json.location).toBe(`s3://${bucket}/${prefix}${cluster}/vrb-status.json`);
    expect(json.toolVersion).toBe(packageInfo().version);
    expect(json.consecutiveFailures).toBe(2);
    expect(json.operations.backup!.runs).toBe(3);
    expect(json.lastSuccess).toBeDefined();
    expect(Date.parse(json.lastSuccess!)).toBeLessThanOrEqual(Date.parse(good.takenAt));
    expect(Date.parse(json.lastAttempt!)).toBeGreaterThan(Date.parse(json.lastSuccess!));
    expect(json.lastError!.exitCode).toBe(denied.code);
    if (deniedStage) expect(json.lastError!.stage).toBe(deniedStage);
    else expect(json.lastError!.stage).toBe("backup");
    expect(denied.stderr).toContain(json.lastError!.message.slice(0, 40));
    expect(json.newestGood).toMatchObject({ key: good.key, bytes: good.bytes, raftIndex: good.raft.index });
    expect(json.goodSnapshots).toBe(1);
    expect(json.rpo.ok).toBe(true);
    expect(json.history.map((h) => h.ok)).toEqual([false, false, true]);

    const check = await runVrb(["status", ...base(), "--check"], cliEnv(env));
    expect(check.code).toBe(1);
    expect(check.stdout).toMatch(/CHECK FAILED: backup: the last 2 attempt\(s\) failed/);
    expect(check.stderr).toMatch(/check failed: st-life: backup: the last 2 attempt/);
    const lenient = await runVrb(["status", ...base(), "--check", "--max-failures", "3"], cliEnv(env));
    expect(lenient.code, lenient.stdout + lenient.stderr).toBe(0);

    const again = await backup();
    expect(again.code, again.stderr).toBe(0);
    const after = await statusOf(["--check"]);
    expect(after.code).toBe(0);
    expect(after.json.consecutiveFailures).toBe(0);
    expect(after.json.check).toEqual({ ok: true, problems: [] });
    expect(after.json.newestGood!.key).toBe((JSON.parse(again.stdout) as BackupReport).key);
    // The last error stays on record for the post-mortem, the attempt that followed succeeded.
    expect(after.json.operations.backup!.lastAttemptOk).toBe(true);
  });

  it("records a drill with its RTO; --max-drill-age is honoured", async () => {
    const keysFile = join(tempDir("status-keys"), "init.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, root_token: env.keys!.rootToken }), { mode: 0o600 });
    const noDrill = await runVrb(["status", ...base(), "--check", "--max-drill-age", "1h"], cliEnv(env));
    expect(noDrill.code).toBe(1);
    expect(noDrill.stdout).toMatch(/no drill recorded/);

    const started = Date.now();
    const drill = await runVrb(["drill", ...base(), "--nodes", "1", "--unseal-keys-file", keysFile, "--json"], cliEnv(env));
    expect(drill.code, drill.stderr).toBe(0);
    const report = JSON.parse(drill.stdout) as DrillReport;
    console.log(`[status test] 1-node drill took ${((Date.now() - started) / 1000).toFixed(1)} s (RTO ${(report.rtoMs / 1000).toFixed(1)} s)`);

    const { json } = await statusOf();
    expect(json.lastDrill).toMatchObject({ ok: true, snapshot: `s3://${bucket}/${report.snapshot.key}` });
    expect(json.lastDrill!.rtoSeconds).toBeCloseTo(report.rtoMs / 1000, 3);
    expect(json.operations.drill).toMatchObject({ runs: 1, consecutiveFailures: 0, lastAttemptOk: true });

    const fresh = await runVrb(["status", ...base(), "--check", "--max-drill-age", "1h"], cliEnv(env));
    expect(fresh.code, fresh.stdout + fresh.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    const old = await runVrb(["status", ...base(), "--check", "--max-drill-age", "1s"], cliEnv(env));
    expect(old.code).toBe(1);
    expect(old.stdout).toMatch(/the last drill is from .* older than --max-drill-age 1s/);
    const bad = await runVrb(["status", ...base(), "--check", "--max-drill-age", "soon"], cliEnv(env));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-drill-age: 'soon' is not a duration/);
  });

  it("a backup into a missing bucket fails with its own error (exit 2), and says its run is not recorded", async () => {
    const r = await missing;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/vrb: error \[stage: destination\]: bucket 'vrb-status-no-such-bucket' does not exist/);
    expect(r.stderr).toMatch(/warning: the backup run is not recorded: the status object lives in s3:\/\/vrb-status-no-such-bucket\//);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 2 });
  });
});

describe("status record: concurrent writers", () => {
  it("two backups of the same cluster at the same time (two processes): both runs are on record", async () => {
    const name = "st-conc";
    const [a, b] = await Promise.all([backup(name), backup(name)]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const r = await runVrb(["status", ...base(name), "--json"], cliEnv(env));
    const json = JSON.parse(r.stdout) as StatusJson;
    expect(json.operations.backup!.runs).toBe(2);
    expect(json.history).toHaveLength(2);
    expect(new Set(json.history.map((h) => h.id)).size).toBe(2);
  });

  it("eight runs recorded at once through the engine wrapper: none lost", async () => {
    const name = "st-many";
    const target = { store: s3StoreOn(s3, bucket, prefix), cluster: name };
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => recordRun("prune", target, () => (i % 2 ? Promise.resolve(i) : Promise.reject(new Error(`boom ${i}`)))).catch(() => undefined)),
    );
    const { record } = await new StatusStore(s3StoreOn(s3, bucket, prefix)).read(name);
    expect(record!.operations.prune!.runs).toBe(8);
    expect(record!.history).toHaveLength(8);
  });
});

/** One scrape: status code, time taken and the parsed exposition. */
async function scrape(url: string) {
  const started = Date.now();
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(1_000) });
  const text = await res.text();
  const ms = Date.now() - started;
  const families = parsePrometheusTextFormat(text);
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => {
    const fam = families.find((f) => f.name === name);
    const sample = fam?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return sample?.value === undefined ? undefined : Number(sample.value);
  };
  return { status: res.status, ms, families, value };
}

describe("vrb exporter", () => {
  let own: LocalS3Server | undefined;
  let exporter: ChildProcess | undefined;
  let stopped = false;
  afterAll(async () => {
    if (own?.pid && stopped) process.kill(own.pid, "SIGCONT");
    exporter?.kill("SIGTERM");
    if (own) await stopS3Server(own);
  });

  it("serves /metrics matching vrb status, and answers from cache within a second while S3 is stopped, marked stale", async () => {
    // Our own S3 server: the shared one serves other test files and must never be stopped.
    own = await startS3Server(tempDir("status-s3"), s3ServerKindFromEnv());
    const ownS3 = localS3Client(own);
    const ownBucket = "vrb-status-exporter";
    await createLockedBucket(ownS3, ownBucket);
    ownS3.destroy();
    const ownEnv = cliEnv(env, { AWS_ENDPOINT_URL_S3: own.endpoint, VRB_BUCKET: ownBucket });
    const made = await runVrb(["backup", "--cluster", "st-exp", "--retries", "0", "--json"], ownEnv);
    expect(made.code, made.stderr).toBe(0);
    const failed = await runVrb(["backup", "--cluster", "st-exp", "--retries", "0", "--vault-addr", `http://127.0.0.1:${await freePort()}`, "--leader-wait", "0"], ownEnv);
    expect(failed.code).toBe(1);
    const statusRun = await runVrb(["status", "--all-clusters", "--json"], ownEnv);
    expect(statusRun.code, statusRun.stderr).toBe(0);
    const all = JSON.parse(statusRun.stdout) as { clusters: ClusterStatus[] };
    expect(all.clusters.map((c) => c.cluster)).toEqual(["st-exp"]);
    const st = all.clusters[0]!;

    exporter = spawn(process.execPath, [vrbBin(), "exporter", "--listen", "127.0.0.1:0", "--interval", "1s"], {
      env: { ...process.env, ...ownEnv },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let err = "";
      exporter!.stderr!.on("data", (d: Buffer) => {
        err += d.toString();
        const m = /serving (http:\/\/\S+)\/metrics/.exec(err);
        if (m) resolve(m[1]!);
      });
      exporter!.on("exit", (code) => reject(new Error(`exporter exited ${code}: ${err}`)));
    });
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);

    // The first read of the bucket lands within a moment.
    let m = await scrape(url);
    for (let i = 0; i < 40 && m.value("vrb_status_stale") !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      m = await scrape(url);
    }
    expect(m.status).toBe(200);
    expect(m.value("vrb_status_stale")).toBe(0);
    const c = { cluster: "st-exp" };
    expect(m.value("vrb_consecutive_failures", { ...c, operation: "backup" })).toBe(st.consecutiveFailures);
    expect(st.consecutiveFailures).toBe(1);
    expect(m.value("vrb_last_success_timestamp_seconds", { ...c, operation: "backup" })).toBe(Date.parse(st.lastSuccess!) / 1000);
    expect(m.value("vrb_last_attempt_timestamp_seconds", { ...c, operation: "backup" })).toBe(Date.parse(st.lastAttempt!) / 1000);
    expect(m.value("vrb_newest_good_snapshot_bytes", c)).toBe(st.newestGood!.bytes);
    expect(m.value("vrb_newest_good_snapshot_raft_index", c)).toBe(st.newestGood!.raftIndex);
    expect(m.value("vrb_newest_good_snapshot_age_seconds", c)).toBeGreaterThanOrEqual(st.newestGood!.ageSeconds);
    expect(m.value("vrb_good_snapshots", c)).toBe(st.goodSnapshots);
    expect(m.value("vrb_locked_snapshots", c)).toBe(st.lockedSnapshots);
    expect(m.value("vrb_rpo_ok", c)).toBe(st.rpo.ok ? 1 : 0);
    expect(m.families.find((f) => f.name === "vrb_consecutive_failures")!.type).toBe("GAUGE");

    // S3 stops answering (SIGSTOP): scrapes still answer from the cache, fast, and say it is stale.
    process.kill(own.pid!, "SIGSTOP");
    stopped = true;
    await new Promise((r) => setTimeout(r, 3_000));
    const frozen = await scrape(url);
    expect(frozen.status).toBe(200);
    expect(frozen.ms).toBeLessThan(1_000);
    expect(frozen.value("vrb_status_stale")).toBe(1);
    expect(frozen.value("vrb_good_snapshots", c)).toBe(st.goodSnapshots);
    expect(frozen.value("vrb_consecutive_failures", { ...c, operation: "backup" })).toBe(1);
    process.kill(own.pid!, "SIGCONT");
    stopped = false;

    // And it recovers once S3 answers again.
    let back = await scrape(url);
    for (let i = 0; i < 80 && back.value("vrb_status_stale") !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      back = await scrape(url);
    }
    expect(back.value("vrb_status_stale")).toBe(0);
  });
});
