import { spawn } from "node:child_process";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { cliEnv, runVrb, s3For, sharedEnvOf, tempDir, vrbBin, vrbEnvironment } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { alive, childrenOf, until } from "../support/processes.js";

// In a container, the command is the PID namespace's init (PID 1), and the kernel delivers a
// signal to an init only when it has a handler for it: a process that relies on the default
// action never sees the kubelet's SIGTERM and is SIGKILLed when the grace period ends, mid-upload.
// docs/kubernetes.md therefore runs each `vrb` command as its container's own process (no `sh -c`
// in between, which would be the init and pass nothing on). This runs `vrb backup` as the init of a
// PID namespace of its own (`unshare --pid --fork`, as a container runtime does) and stops it the
// way the kubelet does: SIGTERM to that init from outside the namespace.
const env = sharedEnvOf("openbao");
const s3 = s3For(env);
const run = Date.now().toString(36);
const cluster = `pid1-${run}`;
const prefix = `pid1-${run}/`;
const strays: number[] = [];

afterAll(() => {
  for (const pid of strays) if (alive(pid)) process.kill(pid, "SIGKILL");
  s3.destroy();
});

describe("vrb backup as PID 1 of its own PID namespace (a container), real OpenBao + SeaweedFS", () => {
  it("SIGTERM from outside, as the kubelet sends it, stops it cleanly: exit 143, upload aborted, no snapshot, the run on record", async () => {
    // Every upload request held 5 s: the signal lands while the upload is under way.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, fault: { kind: "delay", ms: 5_000 } }];
    try {
      const unshare = ["--pid", "--fork", "--kill-child", ...(process.getuid?.() === 0 ? [] : ["--map-root-user"])];
      const vars = vrbEnvironment({ ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url, HOME: tempDir("pid1-home") });
      const child = spawn("unshare", [...unshare, vrbBin(), "backup", "--cluster", cluster, "--prefix", prefix, "--retries", "2"], {
        env: vars,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve, reject) => {
        child.on("error", (err) => reject(new Error(`unshare (util-linux) could not start: ${err.message}`)));
        child.on("exit", (code) => resolve(code));
      });
      await until("the upload to start", () => (/uploading to s3:\/\//.test(stderr) ? true : undefined), 120_000);
      // unshare's one child is the namespace's init: `vrb` (its /bin/sh line execs node in place).
      const [init] = childrenOf(child.pid!);
      expect(init, `the namespace's init; stderr so far: ${stderr}`).toBeDefined();
      strays.push(init!);
      process.kill(init!, "SIGTERM");

      // unshare exits with its child's status.
      expect(await exited, stderr).toBe(143);
      expect(stderr).toMatch(/SIGTERM received: stopping at the next safe point and cleaning up/);
      expect(stderr).toMatch(/interrupted \(SIGTERM\) during stage \w+; no manifest was written/);
    } finally {
      await proxy.stop();
    }

    // Past the proxy's hold: nothing of the run is listed or left, and the run is on record.
    await new Promise((r) => setTimeout(r, 6_000));
    const listed = await runVrb(["list", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { snapshots: unknown[] }).snapshots).toEqual([]);
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: env.bucket!, Prefix: `${prefix}${cluster}/` }));
    expect((objects.Contents ?? []).map((o) => o.Key)).toEqual([`${prefix}${cluster}/vrb-status.json`]);
    const status = await runVrb(["status", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
    const backup = (JSON.parse(status.stdout) as { operations: { backup?: { consecutiveFailures: number; lastError?: { exitCode: number } } } }).operations.backup;
    expect(backup).toMatchObject({ consecutiveFailures: 1, lastError: { exitCode: 143 } });
  }, 180_000);

  it("a command without clean-up of its own (vrb status --check as a CronJob) ends at once on that SIGTERM, with 143, instead of running on until the SIGKILL", async () => {
    // Every read held 20 s: the signal lands while the status is being read.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "GET", share: 1, fault: { kind: "delay", ms: 20_000 } }];
    try {
      const unshare = ["--pid", "--fork", "--kill-child", ...(process.getuid?.() === 0 ? [] : ["--map-root-user"])];
      const vars = vrbEnvironment({ ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url, HOME: tempDir("pid1-home") });
      const child = spawn("unshare", [...unshare, vrbBin(), "status", "--cluster", cluster, "--prefix", prefix, "--check"], { env: vars, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve, reject) => {
        child.on("error", (err) => reject(new Error(`unshare (util-linux) could not start: ${err.message}`)));
        child.on("exit", (code) => resolve(code));
      });
      await until("the first read to reach the store", () => (proxy.stats.matched > 0 ? true : undefined), 60_000);
      const [init] = childrenOf(child.pid!);
      expect(init, `the namespace's init; stderr so far: ${stderr}`).toBeDefined();
      strays.push(init!);
      process.kill(init!, "SIGTERM");
      // Without a handler of its own, the read would finish after the hold (exit 0 or 1), or the
      // kubelet would SIGKILL it (137).
      expect(await exited, stderr).toBe(143);
    } finally {
      await proxy.stop();
    }
  }, 120_000);
});
