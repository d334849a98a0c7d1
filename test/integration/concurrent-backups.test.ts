import { afterAll, describe, expect, it } from "vitest";
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import type { Product } from "../../engine/index.js";
import { BackupBusyError, BackupLease } from "../../engine/backup/lease.js";
import { PRODUCTS, cliEnv, runVrb, s3For, s3StoreOn, sharedEnvOf } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";

// Issue 26 point 4: two backups of one cluster started together never share a key (a per-cluster
// lease makes the second wait for the first, then it takes its own second), a failed run's clean-up
// aborts only its own multipart upload, and the manifest records the object version it describes.
describe.each(PRODUCTS)("concurrent backups of one cluster (real %s + S3)", (product: Product) => {
  const env = sharedEnvOf(product);
  const s3 = s3For(env);
  const bucket = env.bucket!;
  const run = `${product}-${Date.now().toString(36)}`;

  afterAll(() => s3.destroy());

  it("two vrb backup runs started together: the second waits for the first's lease; two good snapshots, distinct keys, each manifest naming its object's version", async () => {
    const cluster = `conc-${run}`;
    const prefix = `conc-${run}/`;
    // Every S3 write held 2 s: the two runs overlap whatever the machine's speed.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, fault: { kind: "delay", ms: 2_000 } }];
    try {
      const backup = () => runVrb(["backup", "--cluster", cluster, "--prefix", prefix, "--json"], { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url }, { timeoutMs: 240_000 });
      const [a, b] = await Promise.all([backup(), backup()]);
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      const waited = [a, b].filter((r) =>
        new RegExp(`another backup of cluster '${cluster}' is running \\(run [0-9a-f-]{36} on .*, pid \\d+, since .*\\): waiting for it to finish`).test(r.stderr),
      );
      expect(waited.length, `${a.stderr}\n---\n${b.stderr}`).toBe(1);
      const reports = [a, b].map((r) => JSON.parse(r.stdout) as { key: string; sha256: string; manifestKey: string });
      expect(reports[0]!.key).not.toBe(reports[1]!.key);
    } finally {
      await proxy.stop();
    }
    const listed = await runVrb(["list", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
    expect(listed.code, listed.stderr).toBe(0);
    const good = (JSON.parse(listed.stdout) as { snapshots: { status: string; key: string }[] }).snapshots.filter((s) => s.status === "good");
    expect(good).toHaveLength(2);
    for (const s of good) {
      const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${s.key}.manifest.json` }))).Body!.transformToString()) as {
        versionId?: string;
        key: string;
      };
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: s.key }));
      // The shared bucket is versioned (object lock): the manifest names the current version of its object.
      expect(head.VersionId).toBeTruthy();
      expect(manifest).toMatchObject({ key: s.key, versionId: head.VersionId });
    }
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    expect(uploads.Uploads ?? []).toEqual([]);
    // Both runs on record, and the lease (in the status record) is gone with the second.
    const record = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${cluster}/vrb-status.json` }))).Body!.transformToString()) as {
      operations: { backup: { runs: number; consecutiveFailures: number } };
      backupLease?: unknown;
    };
    expect(record.operations.backup).toMatchObject({ runs: 2, consecutiveFailures: 0 });
    expect(record.backupLease).toBeUndefined();
  });

  it("the lease: a second holder waits, then refuses naming the run that holds it; once released it is taken", async () => {
    const o = { store: s3StoreOn(s3, bucket, `lease-${run}/`), cluster: "lease" };
    const first = await BackupLease.acquire(o);
    expect(first).toBeDefined();
    const infos: string[] = [];
    const refused = await BackupLease.acquire({ ...o, waitMs: 1_500, info: (m) => infos.push(m) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(BackupBusyError);
    expect((refused as Error).message).toContain(`another backup of cluster 'lease' is still running (run ${first!.run} on `);
    expect(infos.join("\n")).toMatch(/waiting for it to finish/);
    await first!.release();
    const second = await BackupLease.acquire({ ...o, waitMs: 0 });
    expect(second?.run).toBeDefined();
    expect(second!.run).not.toBe(first!.run);
    await second!.release();
  });

  it("a failed run's clean-up aborts its own multipart upload and leaves another run's upload of the same key alone", async () => {
    const key = `cleanup-${run}/c/c-20260101T000000Z-1.snap`;
    const create = async () => (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const [mine, theirs] = [await create(), await create()];
    try {
      const r = await s3StoreOn(s3, bucket).abortUploads(key, { deadlineMs: 20_000, own: { ids: [mine], unknown: false } });
      expect(r).toMatchObject({ aborted: [mine], left: [] });
      const left = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
      expect((left.Uploads ?? []).map((u) => u.UploadId)).toEqual([theirs]);
    } finally {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: theirs })).catch(() => undefined);
    }
  });
});
