import { describe, expect, it } from "vitest";
import { ListObjectVersionsCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { pruneSnapshots, runBackup, SnapshotStore, validatePolicy, type BackupReport, type PruneReport } from "../../engine/index.js";
import { snapshotKeyFor } from "../../engine/snapshot/manifest.js";
import { kvPut, ensureKvV2 } from "../../engine/vault/kv-v2.js";
import { cliEnv, rootClient, runVrb, s3For, sharedEnv, backupOn, s3StoreOn } from "../support/env.js";

const env = sharedEnv();
const s3 = s3For(env);
const bucket = env.bucket!;
const HOUR = 3_600_000;

async function versionsUnder(key: string): Promise<number> {
  const res = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return [...(res.Versions ?? []), ...(res.DeleteMarkers ?? [])].filter((v) => v.Key === key || v.Key === `${key}.manifest.json`).length;
}

describe("retention: vrb prune on real snapshots", () => {
  it("keeps the newest good one, reports locked ones, deletes snapshot + manifest versions together", async () => {
    const cluster = "bk-prune";
    const client = rootClient(env);
    await ensureKvV2(client, "bk-prune");
    const backup = async (hoursAgo: number, lock: boolean): Promise<BackupReport> => {
      await kvPut(client, "bk-prune", "tick", { at: hoursAgo });
      return runBackup(
        backupOn(s3, {
          policy: validatePolicy({
            cluster: { name: cluster, nodes: env.nodes.map((n) => n.apiAddr) },
            destination: { bucket, prefix: `${cluster}/`, endpoint: env.s3!.endpoint, forcePathStyle: true },
            objectLock: lock ? { mode: "GOVERNANCE", days: 1 } : undefined,
          }),
          token: env.keys!.rootToken,
          now: () => new Date(Date.now() - hoursAgo * HOUR),
        }),
      );
    };
    // Oldest first: a locked one, two unlocked ones, the newest unlocked.
    const locked = await backup(4, true);
    const old1 = await backup(3, false);
    const old2 = await backup(2, false);
    const newest = await backup(1, false);
    // A snapshot object whose backup never wrote its manifest, two hours old.
    const orphanKey = snapshotKeyFor(`${cluster}/`, cluster, new Date(Date.now() - 2.5 * HOUR), 7);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: orphanKey, Body: "half a snapshot" }));
    await client.close();

    const dry = await runVrb(["prune", "--cluster", cluster, "--prefix", `${cluster}/`, "--keep-last", "2", "--dry-run", "--json"], cliEnv(env));
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout) as PruneReport;
    expect(plan.dryRun).toBe(true);
    expect(plan.deleted.map((d) => d.key).sort()).toEqual([old1.key, orphanKey].sort());
    expect(plan.locked.map((d) => d.key)).toEqual([locked.key]);
    expect(plan.kept.map((d) => d.key)).toEqual([newest.key, old2.key]);
    expect(await versionsUnder(old1.key)).toBe(2);

    const real = await runVrb(["prune", "--cluster", cluster, "--prefix", `${cluster}/`, "--keep-last", "2"], cliEnv(env));
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/deleted 2, kept 2, still locked 1, failed 0/);
    // Every version of the snapshot and its manifest is gone, not hidden behind a delete marker.
    expect(await versionsUnder(old1.key)).toBe(0);
    expect(await versionsUnder(orphanKey)).toBe(0);
    const store = new SnapshotStore(s3StoreOn(s3, bucket, `${cluster}/`));
    expect((await store.list(cluster)).map((s) => [s.key, s.status])).toEqual([
      [newest.key, "good"],
      [old2.key, "good"],
      [locked.key, "good"],
    ]);

    // keepLast 1 and an age limit that every snapshot exceeds: the newest good one still stays.
    const strict = await pruneSnapshots(store, cluster, { keepLast: 1, maxAgeDays: 1 }, { now: new Date(Date.now() + 3 * 86_400_000) });
    expect(strict.kept.map((d) => d.key)).toEqual([newest.key]);
    expect(strict.deleted.map((d) => d.key)).toEqual([old2.key]);
    // Our clock says the one-day lock is over, the server's does not: its refusal is reported as a lock.
    expect(strict.locked.map((d) => d.key)).toEqual([locked.key]);
    expect(strict.failed).toEqual([]);
    expect((await store.latestGood(cluster)).key).toBe(newest.key);
  });
});
