import { describe, expect, it } from "vitest";
import type { StoredSnapshot } from "../../engine/catalogue/snapshot-store.js";
import { planRetention } from "../../engine/catalogue/retention.js";
import { compareMountKeys } from "../../engine/drill/restored-keys.js";
import { drillDiskNeed } from "../../engine/drill/scheduled.js";
import { ConfigError } from "../../engine/errors.js";
import { validatePolicy } from "../../engine/policy.js";
import { describeVerdict, drillDue, drillProblems, lastPassedDrillAt } from "../../engine/status/drills.js";
import { applyRun, DRILL_VERDICTS_LIMIT, trimVerdicts, type DrillFacts, type DrillVerdict, type RunOutcome, type StatusRecord } from "../../engine/status/record.js";

const now = new Date("2026-06-30T12:00:00Z");
const ago = (hours: number) => new Date(now.getTime() - hours * 3_600_000).toISOString();

function drillRun(drill: DrillFacts, id = drill.at): RunOutcome {
  return {
    id,
    kind: "drill",
    startedAt: new Date(drill.at),
    durationMs: 1000,
    ok: drill.ok,
    exitCode: drill.ok || drill.skipped ? 0 : 1,
    error: drill.ok ? undefined : { stage: drill.skipped ? "drill skipped" : "drill", message: drill.skipped ?? "failed", exitCode: 0, kind: "X" },
    drill,
    drillEvery: "7d",
    toolVersion: "9.9.9",
  };
}

const passed = (hours: number, key = `k-${hours}`): DrillFacts => ({ at: ago(hours), ok: true, rtoSeconds: 12, key, snapshot: `s3://b/${key}` });
const failed = (hours: number, key = `k-${hours}`): DrillFacts => ({ at: ago(hours), ok: false, key, problems: ["canary secret/data/x not readable"] });
const skipped = (hours: number, key = `k-${hours}`): DrillFacts => ({ at: ago(hours), ok: false, key, skipped: "no local binary of HashiCorp Vault 1.21.4" });

function recordOf(...drills: DrillFacts[]): StatusRecord {
  let r: StatusRecord | undefined;
  for (const d of drills) r = applyRun(r, "c", drillRun(d));
  return r!;
}

describe("drill due (drill.every against the status record)", () => {
  it("is due with no record, with no drill, and when the last pass is older than drill.every", () => {
    expect(drillDue(undefined, "7d", now)).toEqual({ due: true, reason: "no drill has passed yet" });
    expect(drillDue(recordOf(passed(8 * 24)), "7d", now)).toMatchObject({ due: true, reason: expect.stringMatching(/is 8\.0 days old; drill\.every is 7d/) });
    expect(drillDue(recordOf(passed(7 * 24)), "7d", now).due).toBe(true);
  });

  it("is not due within drill.every of a pass; failed and skipped drills since leave it not due until the window ends", () => {
    const r = recordOf(passed(48), failed(24), skipped(2));
    expect(drillDue(r, "7d", now)).toMatchObject({ due: false, lastPassed: ago(48) });
    expect(drillDue(r, "1d", now).due).toBe(true);
  });

  it("a failed or skipped drill never counts as a pass", () => {
    expect(drillDue(recordOf(failed(1)), "7d", now).due).toBe(true);
    expect(drillDue(recordOf(skipped(1)), "7d", now).due).toBe(true);
  });

  it("reads records of older versions: a passing lastDrill, or the drill operation's last success", () => {
    const old = { lastDrill: { at: ago(5), ok: true }, operations: {} };
    expect(lastPassedDrillAt(old)).toBe(ago(5));
    expect(
      lastPassedDrillAt({ operations: { drill: { lastAttempt: ago(1), lastAttemptOk: false, lastSuccess: ago(30), consecutiveFailures: 1, runs: 2, lastDurationMs: 1 } } }),
    ).toBe(ago(30));
  });
});

describe("drill verdicts in the status record", () => {
  it("keeps the last drill, the last pass and the last skip apart, and each snapshot's verdict by key", () => {
    const r = recordOf(passed(50, "a"), failed(20, "b"), skipped(2, "c"));
    expect(r.lastDrill).toMatchObject({ key: "b", ok: false });
    expect(r.lastPassedDrill).toMatchObject({ key: "a", ok: true, rtoSeconds: 12 });
    expect(r.lastSkippedDrill).toMatchObject({ key: "c", skipped: expect.stringMatching(/no local binary/) });
    expect(r.drills).toEqual({
      a: { at: ago(50), ok: true, rtoSeconds: 12 },
      b: { at: ago(20), ok: false, problems: ["canary secret/data/x not readable"] },
      c: { at: ago(2), ok: false, skipped: "no local binary of HashiCorp Vault 1.21.4" },
    });
    expect(r.drillEvery).toBe("7d");
    expect(r.operations.drill).toMatchObject({ runs: 3, consecutiveFailures: 2, lastSuccess: ago(50) });
    expect([describeVerdict(r.drills!.a), describeVerdict(r.drills!.b), describeVerdict(r.drills!.c), describeVerdict(undefined)]).toEqual([
      "drill passed",
      "DRILL FAILED",
      "drill skipped",
      "not drilled",
    ]);
  });

  it("a skip never replaces a snapshot's pass or failure", () => {
    const r = recordOf(passed(10, "a"), skipped(5, "a"), failed(4, "b"), skipped(3, "b"));
    expect(r.drills!.a!.ok).toBe(true);
    expect(r.drills!.b!.problems).toEqual(["canary secret/data/x not readable"]);
  });

  it("trims to the newest verdicts, always keeping the newest pass", () => {
    const many: Record<string, DrillVerdict> = { proven: { at: ago(10_000), ok: true } };
    for (let i = 0; i < DRILL_VERDICTS_LIMIT + 10; i++) many[`f${i}`] = { at: ago(i), ok: false };
    const kept = trimVerdicts(many);
    expect(Object.keys(kept)).toHaveLength(DRILL_VERDICTS_LIMIT);
    expect(kept.proven).toBeDefined();
    expect(kept.f0).toBeDefined();
  });
});

describe("vrb status --check: drill window", () => {
  const schedule = "6h";
  it("passes with a pass inside drill.every", () => {
    expect(drillProblems(recordOf(passed(24)), { every: "7d", schedule, now })).toEqual([]);
  });

  it("fails when the newest drill failed, naming its problems, even with a recent pass", () => {
    expect(drillProblems(recordOf(passed(24), failed(1)), { every: "7d", schedule, now })).toEqual([
      expect.stringMatching(/^the newest drill \(.*\) failed: canary secret\/data\/x not readable$/),
    ]);
  });

  it("fails when no drill passed within drill.every plus one schedule window, and says why the last one was skipped", () => {
    // 7d + 6h is the limit: the due drill runs with the next backup.
    expect(drillProblems(recordOf(passed(7 * 24 + 5)), { every: "7d", schedule, now })).toEqual([]);
    const late = drillProblems(recordOf(passed(7 * 24 + 7), skipped(1)), { every: "7d", schedule, now });
    expect(late).toEqual([expect.stringMatching(/^no drill passed within drill\.every 7d \+ one schedule window 6h: .*; the last drill was skipped \(.*\): no local binary/)]);
    expect(drillProblems(recordOf(skipped(1)), { every: "7d", now })).toEqual([expect.stringMatching(/^no drill has passed yet \(drill\.every 7d\); the last drill was skipped/)]);
  });
});

describe("retention keeps the newest snapshot whose drill passed", () => {
  const snap = (hours: number): StoredSnapshot => ({
    bucket: "b",
    key: `k-${hours}`,
    url: `s3://b/k-${hours}`,
    cluster: "c",
    takenAt: new Date(ago(hours)),
    raftIndex: 1000 - hours,
    bytes: 10,
    status: "good",
  });
  const all = [snap(1), snap(7), snap(13), snap(19), snap(25)];

  it("keeps it beyond keepLast, and only the newest one", () => {
    const drills = { "k-19": { at: ago(18), ok: true }, "k-25": { at: ago(24), ok: true }, "k-7": { at: ago(6), ok: false } };
    const plan = planRetention(all, { keepLast: 1 }, now, drills);
    expect(plan.keep.map((d) => [d.snapshot.key, d.reason])).toEqual([
      ["k-1", expect.stringMatching(/newest good snapshot/)],
      ["k-19", expect.stringMatching(/newest snapshot whose drill passed/)],
    ]);
    // A failed drill deletes nothing by itself: k-7 goes by keepLast like any other snapshot.
    expect(plan.delete.map((d) => d.snapshot.key)).toEqual(["k-7", "k-13", "k-25"]);
  });

  it("a snapshot that failed its drill stays while retention keeps it", () => {
    const plan = planRetention(all, { keepLast: 5 }, now, { "k-1": { at: ago(0), ok: false } });
    expect(plan.keep.map((d) => d.snapshot.key)).toEqual(all.map((s) => s.key));
    expect(plan.keep[0]!.reason).toMatch(/drill failed/);
  });

  it("a skipped drill is no pass", () => {
    const plan = planRetention(all, { keepLast: 1 }, now, { "k-13": { at: ago(12), ok: false, skipped: "no disk" } });
    expect(plan.keep.map((d) => d.snapshot.key)).toEqual(["k-1"]);
  });
});

describe("policy drill section", () => {
  const base = { cluster: { name: "prod", nodes: ["https://v:8200"] }, destination: { bucket: "acme-snaps" } };
  const error = (drill: unknown, extra: object = {}) => {
    try {
      validatePolicy({ ...base, ...extra, drill }, "prod.yaml");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return { message: (err as ConfigError).message, field: (err as ConfigError).field };
    }
    throw new Error("accepted");
  };

  it("defaults: a 30m time budget, one throwaway node", () => {
    const p = validatePolicy({ ...base, drill: { every: "7d", unsealKeysFile: "/etc/vrb/init.json" } });
    expect(p.drill).toEqual({ every: "7d", unsealKeysFile: "/etc/vrb/init.json", timeBudget: "30m", nodes: 1 });
  });

  it("refuses bad input naming the field and the fix", () => {
    expect(error({ unsealKeysFile: "k" })).toEqual({ field: "drill.every", message: "prod.yaml: drill.every is required" });
    expect(error({ every: "1s", unsealKeysFile: "k" }).message).toMatch(/drill\.every must be a duration of at least 1m/);
    expect(error({ every: "7d" })).toMatchObject({ field: "drill.unsealKeysFile", message: expect.stringMatching(/set unsealKeysFile \(Shamir seal\) or recoveryKeysFile/) });
    expect(error({ every: "7d", unsealKeysFile: "a", recoveryKeysFile: "b", sealConfigFile: "s" })).toMatchObject({
      field: "drill.recoveryKeysFile",
      message: expect.stringMatching(/not both/),
    });
    expect(error({ every: "7d", recoveryKeysFile: "b" })).toMatchObject({ field: "drill.sealConfigFile", message: expect.stringMatching(/is required with recoveryKeysFile/) });
    expect(error({ every: "7d", unsealKeysFile: "a", sealConfigFile: "s" }).message).toMatch(/drill\.sealConfigFile applies to auto-unseal clusters only/);
    expect(error({ every: "7d", unsealKeysFile: "a", nodes: 9 }).message).toMatch(/drill\.nodes must be between 1 and 5/);
    expect(error({ every: "7d", unsealKeysFile: "a", every_: 1 }).message).toMatch(/unknown field 'drill\.every_'/);
    expect(error({ every: "7d", unsealKeysFile: "a" }, { encryption: { age: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"] } })).toMatchObject({
      field: "drill.identityFile",
      message: expect.stringMatching(/drill\.identityFile is required: the snapshots are encrypted/),
    });
  });

  it("room for a drill: the snapshot per node, a download, an inventory copy and slack", () => {
    expect(drillDiskNeed(100 * 1024 * 1024, 1)).toBe(364 * 1024 * 1024);
  });
});

describe("keys per mount: the restored node against the manifest", () => {
  const manifest = {
    totalKeys: 0,
    totalBytes: 0,
    prefixes: [],
    mounts: [
      { uuid: "u-kv", kind: "secret" as const, path: "kv/", type: "kv", keys: 12, bytes: 1 },
      { uuid: "u-pki", kind: "secret" as const, path: "pki/", type: "pki", keys: 4, bytes: 1 },
      { uuid: "u-cub", kind: "secret" as const, path: "cubbyhole/", type: "cubbyhole", keys: 3, bytes: 1 },
      { uuid: "u-app", kind: "auth" as const, path: "approle/", type: "approle", keys: 5, bytes: 1 },
      { uuid: "u-anon", kind: "secret" as const, keys: 7, bytes: 1 },
    ],
  };

  it("passes when every named secret mount holds what the backup counted", () => {
    const same = compareMountKeys(manifest, { mounts: manifest.mounts.map((m) => ({ ...m, keys: m.type === "cubbyhole" ? 99 : m.keys })) });
    expect(same.problems).toEqual([]);
    // Cubbyholes change with every token, auth mounts with every login, unnamed mounts cannot be told apart: left out.
    expect(same.checked.map((c) => c.mount)).toEqual(["kv/", "pki/"]);
  });

  it("names each mount that lost or gained keys, and a mount missing in the restored node as 0", () => {
    const r = compareMountKeys(manifest, { mounts: [{ uuid: "u-kv", kind: "secret", keys: 11, bytes: 1 }] });
    expect(r.problems).toEqual(["mount kv/ (kv) holds 11 keys, the manifest counted 12", "mount pki/ (pki) holds 0 keys, the manifest counted 4"]);
  });
});
