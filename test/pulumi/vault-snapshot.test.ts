import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { DeleteObjectCommand, ListObjectVersionsCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { s3CredentialEnv, testPolicy } from "../providers/support.js";
import { PRODUCTS, sharedEnvOf, s3For } from "../support/env.js";
import { BACKUP_MAIN, listKeys, plainTextLeaks, PulumiProject, requirePulumiPeers, resourceOf, SNAPSHOT_TYPE, W1, W2 } from "./support.js";

/**
 * The backup stack program (stacks/backup, `manage: snapshotsOnly`) run by the real Pulumi CLI and
 * engine (file backend, passphrase secrets) against each product's shared cluster and S3 server.
 * The Node.js program is launched by the kit's own minimal language host
 * (tools/go/pulumi/languagehost); everything else is Pulumi's.
 */

/** Every stored version of every snapshot under the prefix (a delete marker hides an object, it does not remove it). */
async function listVersions(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const r = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  return (r.Versions ?? []).map((v) => v.Key!).filter((k) => k.endsWith(".snap"));
}

beforeAll(() => requirePulumiPeers());

describe.each(PRODUCTS)("VaultSnapshot under the real Pulumi engine (stacks/backup, manage: snapshotsOnly): %s", (product) => {
  const env = sharedEnvOf(product);
  const token = env.keys!.rootToken;
  const policy = testPolicy(env, `pulumi-${product}`);
  const bucket = env.bucket!;
  const prefix = policy.destination!.prefix!;
  const s3 = s3For(env);
  const project = new PulumiProject("vault-raft-backup", BACKUP_MAIN, s3CredentialEnv(env));
  const taken: string[] = [];
  const snapshotState = async () => {
    const exported = await project.exportStack();
    return resourceOf(exported, SNAPSHOT_TYPE);
  };

  beforeAll(async () => {
    await project.init(
      { "vault-raft-backup:policy": policy, "vault-raft-backup:manage": "snapshotsOnly", "vault-raft-backup:window": W1 },
      { "vault-raft-backup:vaultToken": token },
    );
  });
  afterAll(() => s3.destroy());

  it("preview plans one snapshot and takes none", async () => {
    const r = await project.ok(["preview", "--diff"]);
    expect(r.stdout).toMatch(/\+ pulumi-nodejs:dynamic\/vault-raft-backup:VaultSnapshot: \(create\)/);
    expect(r.stdout).toMatch(/\+ 2 to create/); // the stack and the snapshot
    expect(await listKeys(s3, bucket, prefix)).toEqual([]);
  });

  it("up takes one snapshot: in the bucket, in the stack outputs, status good", async () => {
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/\+ 2 created|2 created/);
    const keys = await listKeys(s3, bucket, prefix);
    expect(keys).toHaveLength(1);
    const out = await project.outputs();
    expect(out).toMatchObject({ manages: "snapshotsOnly", window: W1, snapshotStatus: "good", snapshotKey: keys[0], bucketName: bucket, prefix });
    // snapshotsOnly manages no Vault role and no bucket: those outputs are absent.
    expect(out.snapshotPolicyName).toBeUndefined();
    taken.push(keys[0]!);
    const [snap] = await snapshotState();
    expect(snap!.id).toBe(`s3://${bucket}/${keys[0]}`);
    expect(snap!.outputs).toMatchObject({ status: "good", window: W1, key: keys[0] });
  });

  it("a second up in the same window takes none", async () => {
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/2 unchanged/);
    expect(await listKeys(s3, bucket, prefix)).toEqual(taken);
    expect((await project.outputs()).snapshotKey).toBe(taken[0]);
  });

  it("a new window replaces it: a new snapshot, the old one stays in the bucket", async () => {
    await project.setConfig({ "vault-raft-backup:window": W2 });
    const preview = await project.ok(["preview", "--diff"]);
    expect(preview.stdout).toMatch(/\+-\s*pulumi-nodejs:dynamic\/vault-raft-backup:VaultSnapshot: \(replace\)/);
    expect(preview.stdout).toMatch(/\[diff: ~window\]|~ window/);
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/1 replaced/);
    const keys = await listKeys(s3, bucket, prefix);
    expect(keys).toHaveLength(2);
    const out = await project.outputs();
    expect(out.window).toBe(W2);
    expect(taken).not.toContain(out.snapshotKey);
    expect(keys.sort()).toEqual([...taken, out.snapshotKey as string].sort());
    // The replaced resource's delete left its snapshot in place, and said so.
    expect(r.output).toMatch(/leaving s3:\/\/\S+ in place \(object-locked until [^)]+\): snapshots are removed only by retention/);
    taken.push(out.snapshotKey as string);
  });

  it("refresh finds the snapshot deleted from the bucket (status missing); the next up takes a new one", async () => {
    const current = taken.at(-1)!;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: current }));
    const r = await project.ok(["refresh", "--yes", "--diff"]);
    expect(r.output).toMatch(new RegExp(`s3://${bucket}/${current.replace(/[.]/g, "\\.")} is missing`));
    expect(r.stdout).toMatch(/1 updated/);
    // What the user sees: the drift, field by field.
    expect(r.stdout).toMatch(/~ status\s*: "good" => "missing"/);
    const [snap] = await snapshotState();
    expect(snap!.outputs).toMatchObject({ status: "missing", key: current });
    expect((snap!.outputs!.problems as string[]).join(" ")).toMatch(/\S/);
    // Stack outputs come from the program, which refresh does not run: they change with the next up.

    const preview = await project.ok(["preview", "--diff"]);
    expect(preview.stdout).toMatch(/\(replace\)/);
    await project.ok(["up", "--yes"]);
    const out = await project.outputs();
    expect(out.snapshotStatus).toBe("good");
    expect(out.snapshotKey).not.toBe(current);
    expect(await listKeys(s3, bucket, prefix)).toContain(out.snapshotKey);
    taken.push(out.snapshotKey as string);
  });

  it("refresh finds a damaged snapshot (status corrupt)", async () => {
    const current = taken.at(-1)!;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: current, Body: randomBytes(2048) }));
    const r = await project.ok(["refresh", "--yes"]);
    expect(r.output).toMatch(/ is (corrupt|incomplete): /);
    const [snap] = await snapshotState();
    expect(["corrupt", "incomplete"]).toContain(snap!.outputs!.status);
  });

  it("destroy forgets the resource and keeps every snapshot in the bucket", async () => {
    const versionsBefore = await listVersions(s3, bucket, prefix);
    const r = await project.ok(["destroy", "--yes"]);
    expect(r.output).toMatch(/leaving s3:\/\/\S+ in place/);
    expect(r.stdout).toMatch(/2 deleted/);
    expect(await snapshotState()).toEqual([]);
    // Every snapshot ever taken is still stored: the visible ones and the one hidden by the test's delete marker.
    const versions = await listVersions(s3, bucket, prefix);
    expect(versions.sort()).toEqual(versionsBefore.sort());
    for (const k of taken) expect(versions).toContain(k);
  });

  it("the token is never in plain text: not in the exported state, the backend's files, the stack file or any CLI output", async () => {
    const exported = await project.exportStack();
    const files = project.rawFiles();
    // The backend kept the history of every update (state files with the token as ciphertext).
    expect(files.some((f) => f.path.includes(`${join("backend", ".pulumi")}`) && f.text.includes("VaultSnapshot"))).toBe(true);
    expect(files.some((f) => f.text.includes('"secure"') || f.text.includes("secure:"))).toBe(true);
    expect(project.transcript.length).toBeGreaterThan(8);
    expect(plainTextLeaks(project, exported, [token])).toEqual([]);
  });
});
