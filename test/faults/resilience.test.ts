import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import {
  checkStoredSnapshot,
  DEFAULT_BACKUP_RETRIES,
  runBackup,
  SnapshotStore,
  validatePolicy,
  VaultClient,
  verifyStoredSnapshot,
  type BackupPolicy,
  type Progress,
} from "../../engine/index.js";
import { waitFor } from "../../engine/wait.js";
import { stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { localS3Client, s3ServerKindFromEnv } from "../../devenv/s3server.js";
import { localDown, localUp, type LocalEnvironment } from "../../devenv/environment.js";
import { fillWithRandomData } from "../../engine/vault/fill.js";
import { createS3Client, S3_CALL_ATTEMPTS } from "../../engine/storage/s3/client.js";
import { cliEnv, runVrb, tempDir, backupOn, s3StoreOn } from "../support/env.js";
import { FaultProxy, partUploads } from "../support/fault-proxy.js";

/**
 * Issue 15: backups ride through leader elections (sys/step-down at several moments of a backup)
 * and S3 hiccups (503 SlowDown / 500 InternalError on part uploads, through a fault proxy in front
 * of the real S3 server); and fail cleanly when the cluster or the store does not recover.
 * One 3-node cluster and one S3 server for the whole file.
 */
const MiB = 1024 * 1024;
let env: LocalEnvironment;
let s3: S3Client;
let client: VaultClient;
let proxy: FaultProxy;
let snapshotBytes = 0;

function policyFor(cluster: string, endpoint = env.s3!.endpoint): BackupPolicy {
  return validatePolicy({
    cluster: { name: cluster, nodes: env.nodes.map((n) => n.apiAddr) },
    destination: { bucket: env.bucket!, prefix: "resilience/", endpoint, region: env.s3!.region, forcePathStyle: true },
  });
}

function proxiedS3(): S3Client {
  return createS3Client(
    { endpoint: proxy.url, region: env.s3!.region, forcePathStyle: true },
    { credentials: { accessKeyId: env.s3!.accessKeyId, secretAccessKey: env.s3!.secretAccessKey } },
  );
}

async function activeNode(): Promise<LocalNode> {
  return waitFor(
    async () => {
      for (const n of env.nodes) if ((await nodeHealth(client.forNode(n.apiAddr))).role === "active") return n;
      return undefined;
    },
    { what: "an active node", timeoutMs: 60_000, intervalMs: 100 },
  );
}

/** `sys/step-down` on the active node (root token): the cluster elects a leader again. */
async function stepDown(node: LocalNode): Promise<void> {
  await client.forNode(node.apiAddr).put("sys/step-down", {}, { timeoutMs: 10_000 });
}

/** Nothing unfinished, and no manifest, under the cluster's prefix. */
async function expectNothingHalfDone(cluster: string): Promise<void> {
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket!, Prefix: `resilience/${cluster}/` }));
  expect(uploads.Uploads ?? []).toEqual([]);
  const listed = await new SnapshotStore(s3StoreOn(s3, env.bucket!, "resilience/")).list(cluster);
  expect(listed.filter((s) => s.status === "good")).toEqual([]);
}

/** A good, deeply verified snapshot, and no unfinished upload left behind. */
async function expectGood(cluster: string, key: string): Promise<void> {
  const store = new SnapshotStore(s3StoreOn(s3, env.bucket!, "resilience/"));
  expect(await checkStoredSnapshot(store, key, { deep: true })).toMatchObject({ status: "good" });
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket!, Prefix: `resilience/${cluster}/` }));
  expect(uploads.Uploads ?? []).toEqual([]);
}

/** Progress that runs `action` once, when the snapshot stream has passed `bytes`; records warnings. */
function atStreamBytes(bytes: number, action: () => void): Progress & { fired: boolean; warnings: string[] } {
  const p = {
    fired: false,
    warnings: [] as string[],
    info() {},
    warn(m: string) {
      p.warnings.push(m);
    },
    bytes(stage: string, done: number) {
      if (!p.fired && stage === "snapshot stream" && done >= bytes) {
        p.fired = true;
        action();
      }
    },
  };
  return p;
}

beforeAll(async () => {
  env = await localUp({ dir: tempDir("resilience"), nodes: 3, s3: s3ServerKindFromEnv() });
  s3 = localS3Client(env.s3!);
  client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
  // ~64 MiB of random data: a snapshot of several parts that takes a few seconds to stream.
  await fillWithRandomData(client, { bytes: 64 * MiB });
  proxy = await new FaultProxy(env.s3!.endpoint).start();
});

afterAll(async () => {
  await proxy?.stop();
  await client?.close();
  s3?.destroy();
  if (env) {
    await Promise.all(env.nodes.map((n) => stopNode(n)));
    await localDown(env.dir);
  }
});

describe("leader elections during a backup (sys/step-down, default retries)", () => {
  const runs: { name: string; cluster: string; at: "before" | number }[] = [];
  for (let i = 0; i < 4; i++) runs.push({ name: `step-down just before the backup #${i + 1}`, cluster: `before${i}`, at: "before" });
  for (let i = 0; i < 3; i++) runs.push({ name: `step-down early in the stream #${i + 1}`, cluster: `early${i}`, at: 0.05 });
  for (let i = 0; i < 3; i++) runs.push({ name: `step-down late in the stream #${i + 1}`, cluster: `late${i}`, at: 0.8 });

  for (const run of runs) {
    it(run.name, async () => {
      const victim = await activeNode();
      let stepped: Promise<void> | undefined;
      if (run.at === "before") await stepDown(victim);
      // The first runs learn the snapshot's size; "late" then means 80 % of it.
      const at = run.at === "before" ? Infinity : Math.max(1, Math.floor(run.at * (snapshotBytes || 64 * MiB)));
      const progress = atStreamBytes(at, () => (stepped = stepDown(victim)));
      const started = Date.now();
      const report = await runBackup(backupOn(s3, { policy: policyFor(run.cluster), token: env.keys!.rootToken, progress, retries: DEFAULT_BACKUP_RETRIES }));
      await stepped;
      const waited = progress.warnings.some((w) => /election in progress/.test(w));
      const failed = report.warnings.filter((w) => /^attempt \d+\/\d+ failed/.test(w));
      console.log(
        `${run.name}: good snapshot in ${Date.now() - started} ms from ${report.vault.leaderAddr === victim.apiAddr ? "the old" : "a new"} leader; ` +
          `leader wait ${waited ? "used" : "not needed"}; ${failed.length} failed attempt(s)${failed.length ? `: ${failed.join(" | ").slice(0, 300)}` : ""}`,
      );
      if (run.at !== "before") expect(progress.fired).toBe(true);
      snapshotBytes ||= report.bytes;
      await expectGood(run.cluster, report.key);
    });
  }

  it("leaderless longer than --leader-wait: vrb backup exits 1 at stage preflight after waiting; nothing half-done", async () => {
    const victim = await activeNode();
    const others = env.nodes.filter((n) => n !== victim);
    for (const n of others) process.kill(n.pid!, "SIGSTOP");
    try {
      // Without quorum no node can become active again.
      await stepDown(victim).catch(() => undefined);
      await waitFor(async () => ((await nodeHealth(client.forNode(victim.apiAddr))).role === "standby" ? true : undefined), {
        what: `${victim.id} to be a standby`,
        timeoutMs: 30_000,
      });
      const started = Date.now();
      const r = await runVrb(["backup", "--cluster", "leaderless", "--prefix", "resilience/", "--json", "--leader-wait", "3"], cliEnv(env), { timeoutMs: 60_000 });
      const took = Date.now() - started;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/no active node yet: election in progress, waiting/);
      expect(r.stderr).toMatch(/\[stage: preflight\]/);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 1, error: { stage: "preflight" } });
      expect(JSON.parse(r.stdout).error.message).toMatch(/within the leader wait \(3s\)/);
      // One wait, not one per retry (stopped nodes take up to 5 s to time out per look).
      expect(took).toBeLessThan(30_000);
    } finally {
      for (const n of others) process.kill(n.pid!, "SIGCONT");
    }
    await expectNothingHalfDone("leaderless");
    await activeNode();
  });

  it("no node answers at all: no election to wait for, fails at once", async () => {
    const r = await runVrb(["backup", "--cluster", "sealedcheck", "--prefix", "resilience/", "--json", "--leader-wait", "600"], cliEnv(env, { VRB_NODES: "http://127.0.0.1:1" }), {
      timeoutMs: 60_000,
    });
    // An address nobody answers on is not an election either: no wait.
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/election in progress/);
  });
});

/** The snapshot stream request of a Vault node. */
const snapshotStream = (req: IncomingMessage, url: URL) => req.method === "GET" && url.pathname.endsWith("/sys/storage/raft/snapshot");

describe("Vault connection faults (fault proxy in front of the active node, SIGSTOP)", () => {
  /** A proxy in front of the active node; the policy lists it instead of that node's own address. */
  async function proxiedActive(): Promise<{ victim: LocalNode; vaultProxy: FaultProxy; nodes: string[] }> {
    const victim = await activeNode();
    const vaultProxy = await new FaultProxy(victim.apiAddr).start();
    return { victim, vaultProxy, nodes: env.nodes.map((n) => (n === victim ? vaultProxy.url : n.apiAddr)) };
  }

  it("the connection to Vault dropped mid-stream (after 4 MiB): retried, ends with a good snapshot", async () => {
    const { vaultProxy, nodes } = await proxiedActive();
    vaultProxy.rules = [{ match: snapshotStream, share: 1, limit: 1, fault: { kind: "cut", afterBytes: 4 * MiB } }];
    try {
      const policy = validatePolicy({ ...policyFor("vaultcut"), cluster: { name: "vaultcut", nodes } });
      const warnings: string[] = [];
      const report = await runBackup(backupOn(s3, { policy, token: env.keys!.rootToken, retries: DEFAULT_BACKUP_RETRIES, progress: { info() {}, warn: (m) => warnings.push(m) } }));
      expect(vaultProxy.stats.injected.cut).toBe(1);
      const failed = report.warnings.filter((w) => /^attempt 1\/\d+ failed at stage stream/.test(w));
      console.log(`stream cut after 4 MiB: ${failed.join(" | ").slice(0, 300)}; good snapshot from ${report.vault.leaderAddr}`);
      expect(failed).toHaveLength(1);
      await expectGood("vaultcut", report.key);
    } finally {
      await vaultProxy.stop();
    }
  });

  it("every stream dropped mid-way: exit 1 naming the stream stage after the retries; no manifest, no unfinished upload", async () => {
    const { vaultProxy, nodes } = await proxiedActive();
    vaultProxy.rules = [{ match: snapshotStream, share: 1, fault: { kind: "cut", afterBytes: 2 * MiB } }];
    try {
      const policy = validatePolicy({ ...policyFor("vaultcutall"), cluster: { name: "vaultcutall", nodes } });
      const err = await runBackup(backupOn(s3, { policy, token: env.keys!.rootToken, retries: 1 })).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: "OperationError", stage: "stream", exitCode: 1 });
      expect(vaultProxy.stats.injected.cut).toBe(2);
    } finally {
      await vaultProxy.stop();
    }
    await expectNothingHalfDone("vaultcutall");
  });

  it("the active node stops mid-stream (SIGSTOP): the stall timeout ends the attempt, the retry streams from the node active afterwards", async () => {
    const victim = await activeNode();
    let stopped = false;
    const progress = atStreamBytes(8 * MiB, () => {
      process.kill(victim.pid!, "SIGSTOP");
      stopped = true;
    });
    const started = Date.now();
    try {
      const outcome = await runBackup(
        backupOn(s3, {
          policy: policyFor("vaultstall"),
          token: env.keys!.rootToken,
          retries: DEFAULT_BACKUP_RETRIES,
          stallTimeoutMs: 3_000,
          progress,
        }),
      ).catch((e: unknown) => e);
      expect(stopped).toBe(true);
      const took = Date.now() - started;
      if (outcome instanceof Error) {
        // The other acceptable end: a clean failure naming the stage, nothing half-done.
        console.log(`SIGSTOP of the active node: failed cleanly after ${took} ms: ${outcome.message}`);
        expect(outcome).toMatchObject({ exitCode: 1 });
        expect((outcome as { stage?: string }).stage).toMatch(/stream|preflight|upload/);
        await expectNothingHalfDone("vaultstall");
      } else {
        const report = outcome as Awaited<ReturnType<typeof runBackup>>;
        const stalls = report.warnings.filter((w) => /failed at stage stream: .*stall timeout/.test(w));
        console.log(`SIGSTOP of the active node: good snapshot in ${took} ms from ${report.vault.leaderAddr} after: ${report.warnings.join(" | ").slice(0, 400)}`);
        expect(stalls.length).toBeGreaterThanOrEqual(1);
        expect(report.vault.leaderAddr).not.toBe(victim.apiAddr);
        await expectGood("vaultstall", report.key);
      }
    } finally {
      process.kill(victim.pid!, "SIGCONT");
    }
    await activeNode();
  });
});

describe("S3 hiccups (fault proxy in front of the real S3 server)", () => {
  it("10 % of part uploads answered 503 SlowDown and 2 % 500 InternalError: the backup succeeds, and so does verify", async () => {
    proxy.rules = [
      // The first two part uploads always fail, so every run exercises the retries; then the profile.
      { match: partUploads, share: 1, limit: 2, fault: { kind: "s3-error", status: 503, code: "SlowDown", message: "Please reduce your request rate." } },
      { match: partUploads, share: 0.1, fault: { kind: "s3-error", status: 503, code: "SlowDown", message: "Please reduce your request rate." } },
      { match: partUploads, share: 0.02 / 0.9, fault: { kind: "s3-error", status: 500, code: "InternalError", message: "We encountered an internal error." } },
    ];
    const before = { ...proxy.stats.injected };
    const viaProxy = proxiedS3();
    try {
      const report = await runBackup(backupOn(viaProxy, { policy: policyFor("s3flaky", proxy.url), token: env.keys!.rootToken, retries: 0 }));
      await expectGood("s3flaky", report.key);
      // Re-downloads through the proxy: 10 % of GETs answered 503.
      proxy.rules = [{ match: (req) => req.method === "GET", share: 0.1, fault: { kind: "s3-error", status: 503, code: "SlowDown" } }];
      const store = new SnapshotStore(s3StoreOn(viaProxy, env.bucket!, "resilience/"));
      for (let i = 0; i < 2; i++) {
        expect(await verifyStoredSnapshot(store, await store.resolve("latest", "s3flaky"))).toMatchObject({ ok: true, sha256: report.sha256 });
      }
      // A download cut twice part-way resumes where it broke (ranged GETs of the same version).
      const snapshotGets = (req: IncomingMessage, url: URL) => req.method === "GET" && url.pathname.endsWith(".snap");
      proxy.rules = [{ match: snapshotGets, share: 1, limit: 2, fault: { kind: "cut", afterBytes: 5 * MiB } }];
      const warnings: string[] = [];
      const progress: Progress = { info() {}, warn: (m) => warnings.push(m) };
      expect(await verifyStoredSnapshot(store, await store.resolve("latest", "s3flaky"), { progress })).toMatchObject({ ok: true, sha256: report.sha256 });
      expect(warnings.filter((w) => /resuming there/.test(w))).toHaveLength(2);
      // A burst of throttling on a small read, longer than the SDK's own attempts (the manifest
      // answered SlowDown 4 times in a row), is waited out, not reported as a failed verify.
      const manifestGets = (req: IncomingMessage, url: URL) => req.method === "GET" && url.pathname.endsWith(".manifest.json");
      proxy.rules = [{ match: manifestGets, share: 1, limit: S3_CALL_ATTEMPTS + 1, fault: { kind: "s3-error", status: 503, code: "SlowDown" } }];
      const throttled = proxy.stats.injected.SlowDown ?? 0;
      expect(await verifyStoredSnapshot(store, await store.resolve("latest", "s3flaky"))).toMatchObject({ ok: true, sha256: report.sha256 });
      expect((proxy.stats.injected.SlowDown ?? 0) - throttled).toBe(S3_CALL_ATTEMPTS + 1);
      // A manifest S3 never serves (500 on every try) makes `latest` fail naming it and the
      // reason: never an older snapshot, nor "no good snapshot", as if this one were damaged.
      proxy.rules = [{ match: manifestGets, share: 1, fault: { kind: "s3-error", status: 500, code: "InternalError" } }];
      const unreadable = await store.resolve("latest", "s3flaky").then(
        (s) => new Error(`resolved ${s.key}`),
        (e: unknown) => e as Error,
      );
      expect(unreadable.message).toMatch(new RegExp(`^could not read s3://${env.bucket}/resilience/s3flaky/.*\\.manifest\\.json: .*InternalError`));
    } finally {
      proxy.rules = [];
      viaProxy.destroy();
    }
    const injected = Object.entries(proxy.stats.injected).reduce((n, [k, v]) => n + v - (before[k] ?? 0), 0);
    console.log(`fault proxy injected ${injected} errors: ${JSON.stringify(proxy.stats.injected)}`);
    expect(injected).toBeGreaterThanOrEqual(2);
  });

  it("every part upload answered 503 SlowDown: fails within a bounded time naming SlowDown; upload aborted, no manifest", async () => {
    proxy.rules = [{ match: partUploads, share: 1, fault: { kind: "s3-error", status: 503, code: "SlowDown", message: "Please reduce your request rate." } }];
    const viaProxy = proxiedS3();
    const started = Date.now();
    try {
      const err = await runBackup(backupOn(viaProxy, { policy: policyFor("s3down", proxy.url), token: env.keys!.rootToken, retries: 0 })).catch((e: unknown) => e);
      const took = Date.now() - started;
      console.log(`all part uploads refused: the backup failed after ${took} ms`);
      expect(err).toMatchObject({ name: "OperationError", stage: "upload", exitCode: 1 });
      expect((err as Error).message).toMatch(/S3 refused part \d+ of s3:\/\/.+ with SlowDown after every retry/);
      expect(took).toBeLessThan(90_000);
    } finally {
      proxy.rules = [];
      viaProxy.destroy();
    }
    await expectNothingHalfDone("s3down");
  });
});

describe("a sealed cluster (last: it leaves the throwaway cluster sealed)", () => {
  it("vrb backup exits 1 at once with a message naming the sealed state; nothing written", async () => {
    // Seal the active node until two are sealed; the last one cannot seal as a standby
    // ("please restart instead") and has no quorum, so it is stopped: sealed, sealed, gone.
    const sealed: LocalNode[] = [];
    while (sealed.length < env.nodes.length - 1) {
      const victim = await activeNode();
      await client.forNode(victim.apiAddr).put("sys/seal", {}, { timeoutMs: 10_000 });
      await waitFor(async () => ((await nodeHealth(client.forNode(victim.apiAddr))).role === "sealed" ? true : undefined), { what: `${victim.id} sealed`, timeoutMs: 30_000 });
      sealed.push(victim);
    }
    for (const n of env.nodes.filter((x) => !sealed.includes(x))) await stopNode(n);
    const started = Date.now();
    const r = await runVrb(["backup", "--cluster", "sealed", "--prefix", "resilience/", "--json"], cliEnv(env), { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/the cluster is sealed/);
    expect(r.stderr).toMatch(/unseal it first/);
    expect(r.stderr).not.toMatch(/election in progress/);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 1, error: { stage: "preflight" } });
    // Sealed is not an election: no leader wait, no retry loop.
    expect(Date.now() - started).toBeLessThan(30_000);
    await expectNothingHalfDone("sealed");
  });
});
