import { afterAll, describe, expect, it } from "vitest";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { type Product } from "../../engine/index.js";
import { PRODUCTS, cliEnv, runVrb, s3For, sharedEnvOf, spawnVrb, tempDir } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { alive, childrenOf, until } from "../support/processes.js";

// Issue 26 point 3: `kill -9` of the `vrb` launcher must not leave its worker running. The worker
// (a child Node with a bounded young generation, scripts/cli/launch.ts) watches an IPC channel to
// the launcher and stops as on SIGTERM when it closes: upload aborted, no manifest, no success.

describe.each(PRODUCTS)("vrb launcher killed with SIGKILL (real %s + S3)", (product: Product) => {
  const env = sharedEnvOf(product);
  const s3 = s3For(env);
  const run = `${product}-${Date.now().toString(36)}`;
  const cluster = `kill9-${run}`;
  const prefix = `kill9-${run}/`;
  const strays: number[] = [];

  afterAll(() => {
    for (const pid of strays) if (alive(pid)) process.kill(pid, "SIGKILL");
    s3.destroy();
  });

  it("the worker stops within seconds: upload aborted, no manifest, no good snapshot listed", async () => {
    // S3 behind a proxy that holds every upload request 5 s: the kill lands while the upload is under way.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, fault: { kind: "delay", ms: 5_000 } }];
    try {
      const launcher = spawnVrb(
        ["backup", "--cluster", cluster, "--prefix", prefix, "--retries", "2"],
        { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url, HOME: tempDir("kill9-home") },
        { stdin: "ignore", launcher: true },
      );
      let stderr = "";
      launcher.stdout.resume();
      launcher.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => launcher.on("exit", (code, signal) => resolve({ code, signal })));
      await until("the upload to start", () => (/uploading to s3:\/\//.test(stderr) ? true : undefined), 120_000);
      const [worker] = childrenOf(launcher.pid!);
      expect(worker, "the launcher's worker process").toBeDefined();
      strays.push(worker!);
      expect(alive(worker!)).toBe(true);

      launcher.kill("SIGKILL");
      expect(await exited).toEqual({ code: null, signal: "SIGKILL" });
      // Generous: the worker aborts its upload through the slow proxy before it exits.
      await until("the worker to exit", () => (alive(worker!) ? undefined : true), 60_000);
      // The worker's own last words (its stderr is still the pipe the launcher handed it).
      await until("the worker's stderr to close", () => (launcher.stderr.readableEnded || launcher.stderr.destroyed ? true : undefined), 10_000).catch(() => undefined);
      expect(stderr).toMatch(/the launching process \(pid \d+\) is gone; stopping as on SIGTERM/);
      expect(stderr).toMatch(/interrupted \(SIGTERM\)/);

      // Past the proxy's hold: a held request that reached S3 late would show up now.
      await new Promise((r) => setTimeout(r, 6_000));
      const listed = await runVrb(["list", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
      expect(listed.code, listed.stderr).toBe(0);
      const report = JSON.parse(listed.stdout) as { snapshots: { status: string; key: string }[] };
      expect(report.snapshots.filter((s) => s.status === "good")).toEqual([]);
      const objects = await s3.send(new ListObjectsV2Command({ Bucket: env.bucket!, Prefix: `${prefix}${cluster}/` }));
      const keys = (objects.Contents ?? []).map((o) => o.Key!);
      const why = `vrb's stderr:\n${stderr}\nproxy: ${JSON.stringify(proxy.stats)}`;
      expect(
        keys.filter((k) => k.endsWith(".manifest.json")),
        why,
      ).toEqual([]);
      // A small snapshot goes up in one PUT, which can reach S3 after the worker gave it up (the
      // request was already on its way; S3 cannot be told to drop it). Without its manifest it is
      // no snapshot: vrb list shows it as incomplete, never good.
      for (const key of keys.filter((k) => k.endsWith(".snap"))) {
        expect(report.snapshots.find((s) => s.key === key)?.status, `${key} in vrb list; ${why}`).toBe("incomplete");
      }
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket!, Prefix: prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
      // The run is recorded, as a failure, never as a success.
      const status = await runVrb(["status", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
      const record = JSON.parse(status.stdout) as { operations?: { backup?: { lastSuccess?: string; lastAttemptOk?: boolean } } };
      expect(record.operations?.backup?.lastSuccess).toBeUndefined();
    } finally {
      await proxy.stop();
    }
  });
});
