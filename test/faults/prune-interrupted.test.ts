import { CopyObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { SnapshotStore } from "../../engine/index.js";
import { manifestKeyFor, snapshotKeyFor, type SnapshotManifest } from "../../engine/snapshot/manifest.js";
import { cliEnv, runVrb, s3For, s3StoreOn, sharedEnvOf } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";

// A prune stopped by SIGTERM (a CronJob's deadline, a pod evicted, Ctrl-C) finishes the snapshots
// it is deleting and starts no other: no snapshot is left without its manifest or a manifest
// without its snapshot, the run is recorded as interrupted, and the next prune finishes the job.
// Prune does not touch Vault: the shared OpenBao cluster only makes the one real snapshot.
const env = sharedEnvOf("openbao");
const s3 = s3For(env);
const run = Date.now().toString(36);
const cluster = `prune-term-${run}`;
const prefix = `prune-term-${run}/`;
const HOUR = 3_600_000;
const COPIES = 30;

afterAll(() => s3.destroy());

describe("vrb prune stopped by SIGTERM (real OpenBao snapshot, SeaweedFS behind a proxy that slows deletes)", () => {
  it("finishes the deletions under way, starts no other, exits 143 and records it; nothing is left half-deleted, and the next prune finishes", async () => {
    const made = await runVrb(["backup", "--cluster", cluster, "--prefix", prefix, "--retries", "0", "--json"], cliEnv(env));
    expect(made.code, made.stderr).toBe(0);
    const first = (JSON.parse(made.stdout) as { key: string }).key;
    const got = await s3.send(new GetObjectCommand({ Bucket: env.bucket!, Key: manifestKeyFor(first) }));
    const manifest = JSON.parse(await got.Body!.transformToString()) as SnapshotManifest;
    // Older snapshots of the same cluster: copies of the real one an hour apart, each with its manifest.
    for (let i = 1; i < COPIES; i++) {
      const at = new Date(Date.parse(manifest.takenAt) - i * HOUR);
      const index = Math.max(1, manifest.raft.index - i);
      const key = snapshotKeyFor(prefix, cluster, at, index);
      await s3.send(new CopyObjectCommand({ Bucket: env.bucket!, Key: key, CopySource: `${env.bucket!}/${first}` }));
      const body = JSON.stringify({ ...manifest, key, takenAt: at.toISOString(), raft: { ...manifest.raft, index } });
      await s3.send(new PutObjectCommand({ Bucket: env.bucket!, Key: manifestKeyFor(key), Body: body }));
    }
    const store = new SnapshotStore(s3StoreOn(s3, env.bucket!, prefix));
    expect(await store.list(cluster)).toHaveLength(COPIES);

    // Every DELETE held 500 ms: eight snapshots in flight, each a few deletes in a row.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "DELETE", share: 1, fault: { kind: "delay", ms: 500 } }];
    try {
      const stopped = await runVrb(["prune", "--cluster", cluster, "--prefix", prefix, "--keep-last", "2"], cliEnv(env, { AWS_ENDPOINT_URL_S3: proxy.url }), {
        interrupt: { when: /deleted \S+\.snap \+ manifest/, signal: "SIGTERM" },
      });
      expect(stopped.code, stopped.stderr).toBe(143);
      expect(stopped.stderr).toMatch(/SIGTERM received: stopping at the next safe point/);
      expect(stopped.stderr).toMatch(
        /interrupted \(SIGTERM\) during prune: \d+ of the 28 snapshot\(s\) due were deleted, each whole \(its manifest with it\), the deletions under way finished and no other started; run the prune again to finish/,
      );
      const deletedLines = stopped.stderr.match(/deleted \S+\.snap \+ manifest/g) ?? [];
      const reported = Number(/during prune: (\d+) of the 28/.exec(stopped.stderr)![1]);
      expect(reported).toBe(deletedLines.length);
      // Stopped part-way: some deleted, not all.
      expect(reported).toBeGreaterThan(0);
      expect(reported).toBeLessThan(COPIES - 2);

      // Nothing half-deleted: every snapshot left is whole and good, and no manifest lost its snapshot.
      const left = await store.list(cluster);
      expect(left).toHaveLength(COPIES - reported);
      expect(left.every((s) => s.status === "good")).toBe(true);
      expect(await store.leftovers(cluster)).toEqual([]);

      // On record as an interrupted prune.
      const status = await runVrb(["status", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
      const prune = (JSON.parse(status.stdout) as { operations: { prune?: { consecutiveFailures: number; lastError?: { exitCode: number; message: string } } } }).operations.prune;
      expect(prune?.consecutiveFailures).toBe(1);
      expect(prune?.lastError).toMatchObject({ exitCode: 143, message: expect.stringMatching(/interrupted \(SIGTERM\) during prune/) });
    } finally {
      await proxy.stop();
    }

    // The next prune finishes the job.
    const again = await runVrb(["prune", "--cluster", cluster, "--prefix", prefix, "--keep-last", "2", "--json"], cliEnv(env));
    expect(again.code, again.stderr).toBe(0);
    expect((await store.list(cluster)).map((s) => s.key)).toEqual([
      first,
      snapshotKeyFor(prefix, cluster, new Date(Date.parse(manifest.takenAt) - HOUR), Math.max(1, manifest.raft.index - 1)),
    ]);
  }, 180_000);
});
