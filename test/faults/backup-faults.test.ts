import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import { checkStoredSnapshot, runBackup, SnapshotStore, validatePolicy, VaultClient, verifyStoredSnapshot, type BackupPolicy, type Progress } from "../../engine/index.js";
import { waitFor } from "../../engine/wait.js";
import { startNode, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeHealth, unseal } from "../../engine/vault/operations.js";
import { waitForHealthyVoters } from "../../engine/vault/raft-peers.js";
import { localS3Client, s3ServerKindFromEnv } from "../../devenv/s3server.js";
import { localDown, localUp, saveEnvironment, type LocalEnvironment } from "../../devenv/environment.js";
import { fillWithRandomData } from "../../engine/vault/fill.js";
import { cliEnv, tempDir, backupOn, s3StoreOn, spawnVrb } from "../support/env.js";

const MiB = 1024 * 1024;
let env: LocalEnvironment;
let s3: S3Client;
let client: VaultClient;

function policyFor(cluster: string): BackupPolicy {
  return validatePolicy({
    cluster: { name: cluster, nodes: env.nodes.map((n) => n.apiAddr) },
    destination: { bucket: env.bucket!, prefix: "faults/", endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
  });
}

async function activeNode(): Promise<LocalNode> {
  return waitFor(
    async () => {
      for (const n of env.nodes) if ((await nodeHealth(client.forNode(n.apiAddr))).role === "active") return n;
      return undefined;
    },
    { what: "an active node", timeoutMs: 60_000 },
  );
}

/** Brings a killed node back: start, unseal with the cluster's keys, wait for 3 healthy voters. */
async function revive(node: LocalNode): Promise<void> {
  await startNode(node);
  // localDown stops what state.json names: record the new pid.
  saveEnvironment(env);
  await unseal(client.forNode(node.apiAddr), env.keys!.unsealKeysB64.slice(0, env.keys!.threshold), node.id);
  const leader = client.forNode((await activeNode()).apiAddr);
  await waitForHealthyVoters(leader, 3, 90_000);
}

/** What a failed backup must leave behind: nothing unfinished, nothing counted as good. */
async function expectNothingHalfDone(cluster: string): Promise<void> {
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket!, Prefix: `faults/${cluster}/` }));
  expect(uploads.Uploads ?? []).toEqual([]);
  const listed = await new SnapshotStore(s3StoreOn(s3, env.bucket!, "faults/")).list(cluster);
  expect(listed.filter((s) => s.status === "good")).toEqual([]);
  for (const s of listed) expect((await checkStoredSnapshot(new SnapshotStore(s3StoreOn(s3, env.bucket!, "faults/")), s.key)).status).not.toBe("good");
}

function trigger(when: (stage: string, done: number) => boolean, action: () => void): Progress & { fired: boolean } {
  const p = {
    fired: false,
    info() {},
    warn() {},
    bytes(stage: string, done: number) {
      if (!p.fired && when(stage, done)) {
        p.fired = true;
        action();
      }
    },
  };
  return p;
}

beforeAll(async () => {
  env = await localUp({ dir: tempDir("bk-faults"), nodes: 3, s3: s3ServerKindFromEnv() });
  s3 = localS3Client(env.s3!);
  client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
  // ~64 MiB of random data: the snapshot is several multipart parts, large enough to break mid-way.
  await fillWithRandomData(client, { bytes: 64 * MiB });
});

afterAll(async () => {
  await client?.close();
  s3?.destroy();
  if (env) {
    await Promise.all(env.nodes.map((n) => stopNode(n)));
    await localDown(env.dir);
  }
});

describe("backup faults (own 3-node cluster and S3 server)", () => {
  it("the active node killed mid-stream: rejected at stage 'stream', upload aborted, no manifest", async () => {
    const victim = await activeNode();
    const progress = trigger(
      (stage, done) => stage === "upload" && done >= 8 * MiB,
      () => process.kill(victim.pid!, "SIGKILL"),
    );
    const err = await runBackup(backupOn(s3, { policy: policyFor("kill"), token: env.keys!.rootToken, progress })).catch((e: unknown) => e);
    expect(progress.fired).toBe(true);
    expect(err).toMatchObject({ name: "OperationError", stage: "stream", exitCode: 1 });
    await expectNothingHalfDone("kill");
    await revive(victim);
  });

  it("with --retries the whole pipeline runs again against the newly elected leader", async () => {
    const victim = await activeNode();
    const progress = trigger(
      (stage, done) => stage === "upload" && done >= 8 * MiB,
      () => process.kill(victim.pid!, "SIGKILL"),
    );
    const report = await runBackup(backupOn(s3, { policy: policyFor("retry"), token: env.keys!.rootToken, progress, retries: 4 }));
    expect(progress.fired).toBe(true);
    expect(report.vault.leaderAddr).not.toBe(victim.apiAddr);
    expect(report.warnings[0]).toMatch(/attempt 1\/5 failed at stage stream/);
    const store = new SnapshotStore(s3StoreOn(s3, env.bucket!, "faults/"));
    expect(await checkStoredSnapshot(store, report.key, { deep: true })).toMatchObject({ status: "good" });
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket!, Prefix: "faults/retry/" }));
    expect(uploads.Uploads ?? []).toEqual([]);
    await revive(victim);
  });

  it("the S3 server stops answering mid-upload: stall detected, stage 'upload', upload aborted once it is back", async () => {
    const s3pid = env.s3!.pid!;
    let resume: NodeJS.Timeout | undefined;
    const progress = trigger(
      (stage, done) => stage === "upload" && done >= 8 * MiB,
      () => {
        process.kill(s3pid, "SIGSTOP");
        // Back after the watchdog fired: the engine's cleanup must still remove the upload.
        resume = setTimeout(() => process.kill(s3pid, "SIGCONT"), 8_000);
      },
    );
    try {
      const err = await runBackup(backupOn(s3, { policy: policyFor("s3stop"), token: env.keys!.rootToken, progress, stallTimeoutMs: 3_000 })).catch((e: unknown) => e);
      expect(progress.fired).toBe(true);
      expect(err).toMatchObject({ name: "OperationError", stage: "upload", exitCode: 1 });
      // Only the watchdog words it this way: the configured 3 s stall ended it, not some later timeout.
      expect((err as Error).message).toMatch(/S3 .* accepted no data for \d+s; aborted \(stall timeout\)/);
    } finally {
      clearTimeout(resume);
      process.kill(s3pid, "SIGCONT");
    }
    await expectNothingHalfDone("s3stop");
  });

  it("the S3 server stops sending mid-verify: stall detected at stage 'verify' instead of a hang; verifies once it is back", async () => {
    const report = await runBackup(backupOn(s3, { policy: policyFor("verifystall"), token: env.keys!.rootToken }));
    const store = new SnapshotStore(s3StoreOn(s3, env.bucket!, "faults/"));
    const snapshot = await store.resolve("latest", "verifystall");
    expect(snapshot.key).toBe(report.key);
    const s3pid = env.s3!.pid!;
    const progress = trigger(
      (stage, done) => stage === "verify" && done >= 4 * MiB,
      () => process.kill(s3pid, "SIGSTOP"),
    );
    try {
      const err = await verifyStoredSnapshot(store, snapshot, { progress, stallTimeoutMs: 3_000 }).catch((e: unknown) => e);
      expect(progress.fired).toBe(true);
      expect(err).toMatchObject({ name: "OperationError", stage: "verify", exitCode: 1 });
      expect((err as Error).message).toMatch(/S3 sent no data of s3:\/\/.+ for \d+s; verify aborted \(stall timeout\)/);
    } finally {
      process.kill(s3pid, "SIGCONT");
    }
    const verified = await verifyStoredSnapshot(store, snapshot);
    expect(verified).toMatchObject({ ok: true, sha256: report.sha256, bytes: report.bytes });
  });

  it("vrb backup exits 1 naming the stage when the active node dies mid-stream; no secret in any output or log", async () => {
    const victim = await activeNode();
    const s3pid = env.s3!.pid!;
    // Hold S3 so backpressure parks the stream part-way, then kill the node under it.
    process.kill(s3pid, "SIGSTOP");
    let stdout = "";
    let stderr = "";
    const child = spawnVrb(["backup", "--cluster", "clikill", "--prefix", "faults/", "--json", "--retries", "0"], cliEnv(env));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    // Each stderr chunk with the seconds since spawn: when the stream is late, the failure says where the time went.
    const started = Date.now();
    let timeline = "";
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no stream progress from vrb backup within 60s:\n${timeline}`)), 60_000);
        child.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
          timeline += `+${((Date.now() - started) / 1000).toFixed(1)}s ${d.toString()}`;
          if (/snapshot stream: /.test(stderr)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await new Promise((r) => setTimeout(r, 500));
      process.kill(victim.pid!, "SIGKILL");
    } finally {
      process.kill(s3pid, "SIGCONT");
    }
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/\[stage: stream\]/);
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, exitCode: 1, error: { stage: "stream" } });
    await expectNothingHalfDone("clikill");

    const logs = readdirSync(env.dir, { recursive: true, encoding: "utf8" })
      .map((f) => join(env.dir, f))
      .filter((f) => f.endsWith(".log") && statSync(f).isFile())
      .map((f) => readFileSync(f, "utf8"));
    expect(logs.length).toBeGreaterThanOrEqual(4);
    const everything = [stdout, stderr, ...logs].join("\n");
    for (const secret of [env.keys!.rootToken, ...env.keys!.unsealKeysB64]) expect(everything.includes(secret)).toBe(false);
    await revive(victim);
  });
});
