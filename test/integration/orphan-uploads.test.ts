import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { cliEnv, runVrb, s3For, sharedEnv } from "../support/env.js";

// Issue 26, point 8: multipart uploads left by a killed run (here: started with the AWS SDK on the
// shared S3 server and left, as a SIGKILL leaves them) are listed by vrb list and vrb status,
// counted by vrb_incomplete_uploads, and aborted by vrb prune once older than its threshold. The
// feature is the store's, not the product's: it runs once, on the OpenBao environment's S3 server.

const env = sharedEnv();
const s3: S3Client = s3For(env);
const bucket = env.bucket!;
const run = Date.now().toString(36);
const cluster = `orphan-${run}`;
const prefix = `orphan-${run}/`;
const flags = ["--cluster", cluster, "--prefix", prefix];
const keyOf = (second: string) => `${prefix}${cluster}/2026/12/05/${cluster}-20261205T${second}Z-42.snap`;

/** Starts a multipart upload of `key` with one part sent, and leaves it unfinished. */
async function leaveUpload(key: string): Promise<string> {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(64 * 1024, 7) }));
  return UploadId!;
}

async function uploadIds(): Promise<string[]> {
  const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (page.Uploads ?? []).map((u) => u.UploadId!).sort();
}

/** Until the server's clock says the upload started more than `ms` ago (its Initiated time may be rounded to the second). */
async function olderThan(id: string, ms: number): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    const started = page.Uploads?.find((u) => u.UploadId === id)?.Initiated;
    if (started && Date.now() - started.getTime() > ms + 1000) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

const metric = (text: string) => text.split("\n").find((l) => l.startsWith(`vrb_incomplete_uploads{cluster="${cluster}"}`));

describe(`orphan multipart uploads (real ${env.s3!.kind})`, () => {
  afterAll(async () => {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    for (const u of page.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    s3.destroy();
  });

  it("listed by vrb list and vrb status, counted by vrb_incomplete_uploads, aborted by vrb prune past its threshold only", async () => {
    const orphanKey = keyOf("101010");
    const orphan = await leaveUpload(orphanKey);
    await olderThan(orphan, 1000);

    // The default threshold (24h) holds a fresh upload for a backup that may be running now.
    const listDefault = await runVrb(["list", ...flags, "--json"], cliEnv(env));
    expect(listDefault.code, listDefault.stderr).toBe(0);
    expect(JSON.parse(listDefault.stdout)).toMatchObject({ incompleteUploads: [], uploadsOlderThan: "24h" });

    const list = await runVrb(["list", ...flags, "--uploads-older-than", "1s"], cliEnv(env));
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain("unfinished uploads older than 1s: 1 (left by killed or failed runs; they hold storage until aborted: vrb prune --abort-uploads-older-than 1s)");
    expect(list.stdout).toMatch(new RegExp(`UNFINISHED: ${orphanKey} started \\S+ \\(\\d+s ago\\), upload id ${orphan.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    const listJson = JSON.parse((await runVrb(["list", ...flags, "--uploads-older-than", "1s", "--json"], cliEnv(env))).stdout) as {
      incompleteUploads: { key: string; id: string }[];
    };
    expect(listJson.incompleteUploads).toEqual([expect.objectContaining({ key: orphanKey, id: orphan })]);

    const status = await runVrb(["status", ...flags, "--uploads-older-than", "1s"], cliEnv(env));
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`  UNFINISHED: ${orphanKey} started`);
    expect(metric((await runVrb(["status", ...flags, "--prometheus", "--uploads-older-than", "1s"], cliEnv(env))).stdout)).toBe(`vrb_incomplete_uploads{cluster="${cluster}"} 1`);
    expect(metric((await runVrb(["status", ...flags, "--prometheus"], cliEnv(env))).stdout)).toBe(`vrb_incomplete_uploads{cluster="${cluster}"} 0`);

    // A backup's upload started just now is younger than any threshold: prune leaves it alone.
    await olderThan(orphan, 20_000);
    const young = await leaveUpload(keyOf("202020"));
    const keep = await runVrb(["prune", ...flags, "--json"], cliEnv(env));
    expect(keep.code, keep.stderr).toBe(0);
    expect(JSON.parse(keep.stdout)).toMatchObject({ uploads: { olderThan: "24h", aborted: [], failed: [] } });
    expect(await uploadIds()).toEqual([orphan, young].sort());

    const dry = await runVrb(["prune", ...flags, "--abort-uploads-older-than", "20s", "--dry-run", "--json"], cliEnv(env));
    expect(dry.code, dry.stderr).toBe(0);
    expect((JSON.parse(dry.stdout) as { uploads: { aborted: { id: string }[] } }).uploads.aborted.map((u) => u.id)).toEqual([orphan]);
    expect(await uploadIds()).toEqual([orphan, young].sort());

    const prune = await runVrb(["prune", ...flags, "--abort-uploads-older-than", "20s"], cliEnv(env));
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toContain("unfinished uploads older than 20s: aborted 1, failed 0");
    expect(prune.stdout).toContain(`  aborted: ${orphanKey} started`);
    // Only the orphan is gone; the young upload (a running backup's) is still there.
    expect(await uploadIds()).toEqual([young]);
    expect(metric((await runVrb(["status", ...flags, "--prometheus", "--uploads-older-than", "1h"], cliEnv(env))).stdout)).toBe(`vrb_incomplete_uploads{cluster="${cluster}"} 0`);

    const bad = await runVrb(["prune", ...flags, "--abort-uploads-older-than", "soon"], cliEnv(env));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--abort-uploads-older-than: 'soon' is not a duration");
    expect(await uploadIds()).toEqual([young]);
  });
});
