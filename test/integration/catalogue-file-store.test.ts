import { existsSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkStoredSnapshot,
  ConfigError,
  IntegrityError,
  InterruptedError,
  listClusters,
  openStore,
  OperationError,
  presignSnapshot,
  pruneSnapshots,
  readClusterStatus,
  recordRun,
  runBackup,
  runDrill,
  setLegalHold,
  SnapshotStore,
  validatePolicy,
  verifyStoredSnapshot,
  type BackupReport,
  type ObjectStore,
} from "../../engine/index.js";
import { StoreCapabilityError } from "../../engine/storage/errors.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { rootClient, sharedEnv, tempDir } from "../support/env.js";

// The snapshot catalogue, verify, retention, holds, pre-signed URLs, the status record and a drill
// read and write through the ObjectStore seam: here on a directory (type: file, a real temporary
// directory), backed up from the shared OpenBao cluster. What S3 does the S3 tests prove.
describe("a directory destination (type: file): catalogue, verify, prune, status, holds and a drill", () => {
  const env = sharedEnv();
  const run = Date.now().toString(36);
  const cluster = `fs-${run}`;
  const dir = tempDir("file-destination");
  const policy = validatePolicy({ cluster: { name: cluster, nodes: env.nodes.map((n) => n.apiAddr) }, destination: { type: "file", path: dir, prefix: "vault/" } });
  let objects: ObjectStore;
  let store: SnapshotStore;
  let older: BackupReport;
  let newest: BackupReport;

  beforeAll(async () => {
    objects = await openStore(policy.destination);
    store = new SnapshotStore(objects);
    const c = rootClient(env);
    await ensureKvV2(c, `fs-${run}`);
    await kvPut(c, `fs-${run}`, "app/db", { password: `pw-${run}` });
    await c.close();
    older = await runBackup({ policy, token: env.keys!.rootToken, store: objects });
    newest = await runBackup({ policy, token: env.keys!.rootToken, store: objects });
  }, 120_000);

  afterAll(() => objects?.close());

  it("lists both snapshots as good under file:// URLs; latest, a bare key and the store's own URL resolve; another store's URL is refused naming both", async () => {
    const listed = await store.list(cluster);
    expect(listed.map((s) => [s.key, s.status])).toEqual([
      [newest.key, "good"],
      [older.key, "good"],
    ]);
    expect(listed[0]!.url).toBe(`file://${dir}/${newest.key}`);
    expect(existsSync(join(dir, newest.key))).toBe(true);
    expect((await store.resolve("latest", cluster)).key).toBe(newest.key);
    expect((await store.resolve(older.key)).key).toBe(older.key);
    expect((await store.resolve(`file://${dir}/${older.key}`)).manifest?.sha256).toBe(older.sha256);
    const wrong = await store.resolve(`s3://some-bucket/${older.key}`).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ConfigError);
    expect((wrong as Error).message).toContain("is a s3:// URL, but destination 'primary' is a file store");
  });

  it("verify proves the stored bytes; a truncated file is corrupt (IntegrityError, exit 3) and 'latest' skips it", async () => {
    const good = await verifyStoredSnapshot(store, await store.resolve(older.key));
    expect(good).toMatchObject({ ok: true, sha256: older.sha256, url: `file://${dir}/${older.key}` });
    expect(await checkStoredSnapshot(store, older.key, { deep: true })).toMatchObject({ status: "good", problems: [] });
    truncateSync(join(dir, newest.key), 100);
    const health = await checkStoredSnapshot(store, newest.key);
    expect(health.status).toBe("corrupt");
    expect(health.problems.join()).toContain(`object has 100 bytes, manifest says ${newest.bytes}`);
    const damaged = (await store.list(cluster)).find((s) => s.key === newest.key)!;
    expect(damaged.status).toBe("invalid-manifest");
    const refused = await verifyStoredSnapshot(store, { ...damaged, status: "good" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IntegrityError);
    expect((await store.resolve("latest", cluster)).key).toBe(older.key);
  });

  it("legal hold and pre-signed URLs are refused with a StoreCapabilityError naming the file store, and nothing changes", async () => {
    const held = await setLegalHold(store, older.key, true).catch((e: unknown) => e);
    expect(held).toBeInstanceOf(StoreCapabilityError);
    expect((held as Error).message).toMatch(/destination 'primary' is a file store, which has no legal holds/);
    const urls = await presignSnapshot(store, await store.resolve(older.key), 600).catch((e: unknown) => e);
    expect(urls).toBeInstanceOf(StoreCapabilityError);
    expect((urls as Error).message).toMatch(/is a file store, which cannot make pre-signed URLs/);
    expect((await store.retention(older.key)).legalHold).toBe(false);
  });

  it("status: a run recorded in the directory is read back with the snapshots' facts; the cluster is listed", async () => {
    await recordRun("prune", { store: objects, cluster }, () => Promise.resolve("done"));
    expect(await listClusters(objects)).toEqual([cluster]);
    const status = await readClusterStatus({ store: objects, cluster, every: "6h" });
    expect(status).toMatchObject({
      cluster,
      location: `file://${dir}/vault/${cluster}/vrb-status.json`,
      recorded: true,
      goodSnapshots: 1,
      invalidSnapshots: 1,
      lockedSnapshots: 0,
    });
    expect(status.operations.prune).toMatchObject({ runs: 1, consecutiveFailures: 0 });
    expect(status.newestGood?.key).toBe(older.key);
  });

  it("status: a drill stopped by a signal is an interrupted run, not a failed drill; a drill that fails is one", async () => {
    const target = { store: objects, cluster: `${cluster}-drills` };
    const stopped = new InterruptedError("drill: interrupted (SIGTERM) during the download", { signal: "SIGTERM", stage: "download" });
    await expect(recordRun("drill", target, () => Promise.reject(stopped))).rejects.toBe(stopped);
    let status = await readClusterStatus({ ...target, every: "6h" });
    expect(status.operations.drill).toMatchObject({ runs: 1, consecutiveFailures: 1 });
    expect(status.operations.drill?.lastError).toMatchObject({ kind: "InterruptedError", exitCode: 143 });
    expect(status.lastDrill).toBeUndefined();

    await expect(recordRun("drill", target, () => Promise.reject(new OperationError("the restored cluster never turned healthy")))).rejects.toThrow();
    status = await readClusterStatus({ ...target, every: "6h" });
    expect(status.lastDrill).toMatchObject({ ok: false });
  });

  it("a drill restores the good snapshot from the directory into a throwaway node; prune then deletes the damaged one's files", async () => {
    const report = await runDrill({
      store,
      cluster,
      nodes: 1,
      keys: { kind: "unseal", keys: env.keys!.unsealKeysB64 },
      token: env.keys!.rootToken,
      timeoutsMs: { step: 90_000 },
    });
    expect(report.ok, report.problems.join("; ")).toBe(true);
    expect(report.snapshot).toMatchObject({ key: older.key, url: `file://${dir}/${older.key}` });
    expect(report.teardown.stopped).toBe(1);

    // The damaged snapshot is "not good" and dated now: retention keeps it for an hour; an hour later it goes, with its manifest.
    const later = new Date(Date.now() + 2 * 3600_000);
    const pruned = await pruneSnapshots(store, cluster, { keepLast: 5 }, { now: later });
    expect(pruned.deleted.map((d) => [d.key, d.versions])).toEqual([[newest.key, 2]]);
    expect(pruned.failed).toEqual([]);
    expect(existsSync(join(dir, newest.key))).toBe(false);
    expect(existsSync(join(dir, `${newest.key}.manifest.json`))).toBe(false);
    expect((await store.list(cluster)).map((s) => s.key)).toEqual([older.key]);
  });
});
