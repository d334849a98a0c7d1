import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prunerPolicyDocument, restorerPolicyDocument, SnapshotStore, writerPolicyDocument } from "../../engine/index.js";
import { legalHoldPolicyDocument, type IamPolicyDocument } from "../../engine/access/iam.js";
import { cliEnv, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir, writeKeysFile } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { iamGate, refused, type GatedRequest } from "../support/s3-iam-gate.js";

// The kit's S3 identities, each running the commands it is meant for with only what its document
// grants (docs/pulumi.md "Access"): the writer backs up, the restorer lists, verifies and reads the
// status, the pruner applies retention. Real OpenBao snapshots on SeaweedFS; in front of it, a proxy
// that gives every request IAM's verdict for the identity's document (test/support/s3-iam-gate.ts)
// and answers 403 AccessDenied, as S3 would, to what the document does not allow.
const env = sharedEnvOf("openbao");
const s3 = s3For(env);
const run = Date.now().toString(36);
const prefix = `least-${run}/`;
const cluster = "least";
const bucketArn = `arn:aws:s3:::${env.bucket!}`;
const scope = { bucketArn, prefix };

let identity: IamPolicyDocument = writerPolicyDocument(scope);
let seen: GatedRequest[] = [];
let proxy: FaultProxy;
let gated: Record<string, string>;

beforeAll(async () => {
  proxy = await new FaultProxy(env.s3!.endpoint).start();
  proxy.rules = [iamGate(() => identity, seen)];
  gated = cliEnv(env, { AWS_ENDPOINT_URL_S3: proxy.url });
});
afterAll(async () => {
  await proxy?.stop();
  s3.destroy();
});

/** Runs `vrb args` as the identity of `doc`; the requests it made and those refused. */
async function as(doc: IamPolicyDocument, args: string[]) {
  identity = doc;
  seen = [];
  proxy.rules = [iamGate(() => identity, seen)];
  const r = await runVrb(args, gated);
  return { ...r, seen, refused: refused(seen) };
}

describe("least privilege on S3: each identity's document is enough for its commands, and no more", () => {
  const where = ["--cluster", cluster, "--prefix", prefix];

  it("the writer backs up (also under an object lock) with nothing refused, the bucket check included", async () => {
    const dir = tempDir("least-policy");
    const locked = join(dir, "locked.yaml");
    writeFileSync(
      locked,
      `cluster: { name: ${cluster}, nodes: ["${env.nodes[0]!.apiAddr}"] }\ndestination: { bucket: ${env.bucket}, prefix: ${prefix} }\nobjectLock: { mode: GOVERNANCE, days: 1 }\n`,
    );
    const first = await as(writerPolicyDocument(scope), ["backup", "--policy", locked, "--retries", "0"]);
    expect(first.code, first.stderr).toBe(0);
    // The bucket check lists under the prefix: HeadBucket would be s3:ListBucket of the whole
    // bucket, refused to an identity that may list under its prefix only.
    expect(first.refused).toEqual([]);
    expect(first.stderr).not.toMatch(/could not check that bucket/);
    expect(first.seen.some((g) => g.authorizations.some((a) => a.action === "s3:PutObjectRetention"))).toBe(true);
    for (let i = 0; i < 3; i++) {
      const more = await as(writerPolicyDocument(scope), ["backup", ...where, "--retries", "0"]);
      expect(more.code, more.stderr).toBe(0);
      expect(more.refused).toEqual([]);
    }
    expect(await new SnapshotStore(s3StoreOn(s3, env.bucket!, prefix)).list(cluster)).toHaveLength(4);
  });

  it("the restorer lists, verifies, drills and reads the status (also of the whole fleet, as the exporter) with nothing refused; the writer may not prune", async () => {
    const keys = writeKeysFile(env, join(tempDir("least-keys"), "keys.json"));
    for (const args of [["list"], ["verify", "latest"], ["status", "--check"], ["status", "--all-clusters"], ["drill", "latest", "--nodes", "1", "--unseal-keys-file", keys]]) {
      const r = await as(restorerPolicyDocument(scope), [...args, ...where]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.refused, args.join(" ")).toEqual([]);
    }
    // The drill is on record: the status object is the one thing the restorer wrote.
    const drilled = await runVrb(["status", ...where, "--json"], cliEnv(env));
    expect((JSON.parse(drilled.stdout) as { lastDrill?: { ok: boolean } }).lastDrill?.ok).toBe(true);
    const writerPrunes = await as(writerPolicyDocument(scope), ["prune", ...where, "--keep-last", "1"]);
    expect(writerPrunes.code).toBe(1);
    expect(writerPrunes.refused.some((line) => /s3:ListBucketVersions|s3:DeleteObjectVersion/.test(line))).toBe(true);
    // It says which identity prune needs, once per snapshot it could not delete.
    expect(writerPrunes.stdout).toMatch(/FAILED: \S+: Access Denied \(vrb prune needs the pruner identity \(BackupPolicy prunerPolicyJson\)/);
    expect(await new SnapshotStore(s3StoreOn(s3, env.bucket!, prefix)).list(cluster)).toHaveLength(4);
  });

  it("an operator with the restorer's and the legal hold's documents holds and releases a snapshot with nothing refused; the restorer alone may not", async () => {
    const operator: IamPolicyDocument = { Version: "2012-10-17", Statement: [...restorerPolicyDocument(scope).Statement, ...legalHoldPolicyDocument(scope).Statement] };
    const alone = await as(restorerPolicyDocument(scope), ["hold", "latest", ...where]);
    expect(alone.code).not.toBe(0);
    expect(alone.refused.some((line) => line.includes("s3:PutObjectLegalHold"))).toBe(true);
    const held = await as(operator, ["hold", "latest", ...where]);
    expect(held.code, held.stderr).toBe(0);
    expect(held.refused).toEqual([]);
    const released = await as(operator, ["release", "latest", ...where]);
    expect(released.code, released.stderr).toBe(0);
    expect(released.refused).toEqual([]);
  });

  it("the pruner applies retention with nothing refused: the unlocked snapshots go whole, the locked one is reported locked", async () => {
    const store = new SnapshotStore(s3StoreOn(s3, env.bucket!, prefix));
    const before = await store.list(cluster);
    const r = await as(prunerPolicyDocument(scope), ["prune", ...where, "--keep-last", "1", "--json"]);
    expect(r.refused).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { deleted: { key: string }[]; locked: { key: string }[] };
    // The oldest snapshot was taken under GOVERNANCE for a day: the pruner cannot bypass it.
    const oldest = before[before.length - 1]!.key;
    expect(report.locked.map((s) => s.key)).toEqual([oldest]);
    expect(report.deleted.map((s) => s.key).sort()).toEqual(
      before
        .slice(1, -1)
        .map((s) => s.key)
        .sort(),
    );
    expect((await store.list(cluster)).map((s) => s.key)).toEqual([before[0]!.key, oldest]);
    expect(await store.leftovers(cluster)).toEqual([]);
    // It recorded the run: the status object is the one thing it writes.
    const writes = r.seen.filter((g) => g.authorizations.some((a) => a.action === "s3:PutObject"));
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(w.request).toMatch(new RegExp(`^PUT /${env.bucket}/${prefix}${cluster}/vrb-status\\.json`));
  });
});
