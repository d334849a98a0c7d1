import { createWriteStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { runBackup, setLegalHold, SnapshotStore, validatePolicy, type BackupReport, type InspectReport, type LegalHoldReport, type PruneReport } from "../../engine/index.js";
import { type InventoryDiff } from "../../engine/snapshot/inventory/diff.js";
import { openSnapshotStream } from "../../engine/backup/stages/source.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { createLockedBucket, localS3Client, startS3Server, stopS3Server, type LocalS3Server, type S3ServerKind } from "../../devenv/s3server.js";
import { applyRetention } from "../../engine/catalogue/retention.js";
import { cliEnv, PRODUCTS, policyStoreOn, rootClient, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";

const cluster = "inv";
const mount = "inv-kv";
const N = 200;
const scope = ["--cluster", cluster, "--prefix", `${cluster}/`];

async function deleteRefused(c: S3Client, b: string, key: string, versionId?: string): Promise<boolean> {
  try {
    await c.send(new DeleteObjectCommand({ Bucket: b, Key: key, VersionId: versionId }));
    return false;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return e.$metadata?.httpStatusCode === 403 || e.name === "AccessDenied";
  }
}

// Inventory, diff, the shrink guard and legal hold on each product's shared cluster (OpenBao and
// HashiCorp Vault), each with its own S3 server and bucket.
describe.each(PRODUCTS)("%s: inventory, diff, shrink guard and legal hold on the shared cluster and S3", (product) => {
  const env = sharedEnvOf(product);
  const s3 = s3For(env);
  const bucket = env.bucket!;
  const client = rootClient(env);
  const dir = tempDir(`inventory-${product}`);

  async function mountUuid(): Promise<string> {
    const res = await client.get<{ data: Record<string, { uuid: string }> }>("sys/mounts");
    return res.body.data[`${mount}/`]!.uuid;
  }

  let uuid: string;
  let first: BackupReport;
  let suspectKey: string;

  beforeAll(async () => {
    await ensureKvV2(client, mount);
    // An auth method with stored data: its keys live under auth/<uuid>/ and sys/auth names it.
    await client.post("sys/auth/inv-approle", { type: "approle" });
    await client.post("auth/inv-approle/role/inv-role", { token_policies: ["default"] });
    for (let i = 0; i < N; i += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => kvPut(client, mount, `s-${i + j}`, { n: i + j })));
    uuid = await mountUuid();
  });
  afterAll(async () => {
    await client.close();
  });

  it("vrb inspect of a snapshot file: at least N keys under the mount's uuid; its path with --map-from-cluster", async () => {
    const file = join(dir, "saved.snap");
    const leader = (await client.get<{ leader_address: string }>("sys/leader")).body.leader_address;
    await pipeline(await openSnapshotStream(client.forNode(leader)), createWriteStream(file));
    const plain = await runVrb(["inspect", file, "--json"], {});
    expect(plain.code, plain.stderr).toBe(0);
    const r = JSON.parse(plain.stdout) as InspectReport;
    expect(r.meta.index).toBeGreaterThan(0);
    expect(r.mountPaths).toBe("none");
    const m = r.mounts.find((x) => x.uuid === uuid)!;
    expect(m.kind).toBe("secret");
    expect(m.keys).toBeGreaterThanOrEqual(N);
    expect(m.path).toBeUndefined();
    expect(r.prefixes.map((p) => p.prefix)).toEqual(expect.arrayContaining(["auth/", "core/", "logical/", "sys/"]));
    expect(r.totalKeys).toBe(r.prefixes.reduce((n, p) => n + p.keys, 0));

    const mapped = await runVrb(["inspect", file, "--map-from-cluster", "--json"], { VAULT_ADDR: env.nodes[0]!.apiAddr, VAULT_TOKEN: env.keys!.rootToken });
    expect(mapped.code, mapped.stderr).toBe(0);
    const rm = JSON.parse(mapped.stdout) as InspectReport;
    expect(rm.mountPaths).toBe("cluster");
    expect(rm.mounts.find((x) => x.uuid === uuid)).toMatchObject({ path: `${mount}/`, type: "kv", keys: m.keys });
    // The built-in identity store and an auth method are counted and named alike on both products.
    expect(rm.mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: "secret", path: "identity/", type: "identity" }),
        expect.objectContaining({ kind: "auth", path: "inv-approle/", type: "approle" }),
      ]),
    );
    const text = await runVrb(["inspect", file, "--map-from-cluster"], { VAULT_ADDR: env.nodes[0]!.apiAddr, VAULT_TOKEN: env.keys!.rootToken });
    expect(text.stdout).toContain(`secret ${mount}/ (kv) ${uuid}`);
    expect(text.stdout).not.toContain(env.keys!.rootToken);
  });

  it("every backup stores its inventory; vrb inspect of a stored snapshot names mounts from the manifest", async () => {
    const policy = validatePolicy({
      cluster: { name: cluster, nodes: env.nodes.map((n) => n.apiAddr) },
      destination: { bucket, prefix: `${cluster}/`, endpoint: env.s3!.endpoint, forcePathStyle: true },
    });
    first = await runBackup({ policy, token: env.keys!.rootToken, store: policyStoreOn(s3, policy) });
    expect(first.inventory!.totalKeys).toBeGreaterThan(N);
    const manifest = (await new SnapshotStore(s3StoreOn(s3, bucket, `${cluster}/`)).readManifest(first.key))!;
    expect(manifest.inventory!.mounts.find((x) => x.uuid === uuid)).toMatchObject({ path: `${mount}/`, type: "kv", kind: "secret" });
    const res = await runVrb(["inspect", "latest", ...scope, "--json"], cliEnv(env));
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as InspectReport;
    expect(r.source).toBe(`s3://${bucket}/${first.key}`);
    expect(r.mountPaths).toBe("manifest");
    expect(r.meta.vault).toBe(first.vault.version);
    expect(r.mounts.find((x) => x.uuid === uuid)!.keys).toBeGreaterThanOrEqual(N);
  });

  it("a token that may not read the mount table: the backup succeeds with a warning and uuids only", async () => {
    await client.put("sys/policies/acl/inv-no-mounts", {
      policy: ["sys/storage/raft/snapshot", "sys/storage/raft/configuration", "sys/storage/raft/autopilot/state", "auth/token/lookup-self"]
        .map((p) => `path "${p}" { capabilities = ["read"] }`)
        .join("\n"),
    });
    const created = await client.post<{ auth: { client_token: string } }>("auth/token/create", { policies: ["inv-no-mounts"], no_default_policy: true, ttl: "10m" });
    const policy = validatePolicy({
      cluster: { name: "inv-403", nodes: env.nodes.map((n) => n.apiAddr) },
      destination: { bucket, prefix: "inv-403/", endpoint: env.s3!.endpoint, forcePathStyle: true },
    });
    const report = await runBackup({ policy, token: created.body.auth.client_token, store: policyStoreOn(s3, policy) });
    expect(report.warnings.join("\n")).toMatch(/may not read sys\/mounts \(403/);
    expect(report.warnings.join("\n")).toMatch(/may not read sys\/auth \(403/);
    const manifest = (await new SnapshotStore(s3StoreOn(s3, bucket, "inv-403/")).readManifest(report.key))!;
    const ours = manifest.inventory!.mounts.find((m) => m.uuid === uuid)!;
    expect(ours.keys).toBeGreaterThanOrEqual(N);
    expect(ours.path).toBeUndefined();
  });

  it("guard: after deleting half of the mount a backup with action fail exits 1 at stage guard; stored as suspect, never latest; diff shows the drop on that mount only", async () => {
    for (let i = 0; i < 100; i += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => client.delete(`${mount}/metadata/s-${i + j}`)));
    const policyFile = join(dir, "guard.yaml");
    writeFileSync(policyFile, `cluster:\n  name: ${cluster}\ndestination:\n  bucket: ${bucket}\n  prefix: ${cluster}/\nguard:\n  maxDropPercent: 20\n  action: fail\n`);
    const res = await runVrb(["backup", "--policy", policyFile, "--json"], cliEnv(env));
    expect(res.code, res.stderr).toBe(1);
    const failed = JSON.parse(res.stdout) as { ok: false; error: { stage: string; message: string } };
    expect(failed.error.stage).toBe("guard");
    expect(failed.error.message).toContain(`secret mount ${mount}/`);
    suspectKey = /stored as suspect[^:]*: s3:\/\/[^/]+\/(\S+)/.exec(failed.error.message)![1]!;

    const list = await runVrb(["list", ...scope, "--json"], cliEnv(env));
    const rows = (JSON.parse(list.stdout) as { snapshots: { key: string; status: string; keys?: number; suspect?: { reason: string } }[] }).snapshots;
    expect(rows.map((r) => [r.key, r.status, Boolean(r.suspect)])).toEqual([
      [suspectKey, "good", true],
      [first.key, "good", false],
    ]);
    expect(rows[1]!.keys).toBe(first.inventory!.totalKeys);
    const listText = await runVrb(["list", ...scope], cliEnv(env));
    expect(listText.stdout).toMatch(new RegExp(`^suspect .*${suspectKey}`, "m"));

    // `latest` (restore, verify, drill) resolves past the suspect one; named, it is still there.
    const store = new SnapshotStore(s3StoreOn(s3, bucket, `${cluster}/`));
    expect((await store.resolve("latest", cluster)).key).toBe(first.key);
    const verify = await runVrb(["verify", "latest", ...scope, "--json"], cliEnv(env));
    expect(verify.code, verify.stderr).toBe(0);
    expect((JSON.parse(verify.stdout) as { key: string }).key).toBe(first.key);

    const diff = await runVrb(["diff", first.key, suspectKey, ...scope, "--json"], cliEnv(env));
    expect(diff.code, diff.stderr).toBe(0);
    const d = JSON.parse(diff.stdout) as InventoryDiff;
    expect([d.a.from, d.b.from]).toEqual(["manifest", "manifest"]);
    const ours = d.mounts.find((m) => m.uuid === uuid)!;
    expect(ours.path).toBe(`${mount}/`);
    expect(ours.change.keys).toBeLessThanOrEqual(-100);
    expect(ours.change.bytes).toBeLessThan(0);
    // Other tests write to the shared cluster meanwhile; none of them deletes 100 keys.
    expect(d.mounts.filter((m) => m.change.keys <= -100).map((m) => m.uuid)).toEqual([uuid]);

    // Retention: keep-last 1 would keep only the suspect one; the newest good one before it stays.
    const prune = await runVrb(["prune", ...scope, "--keep-last", "1", "--json"], cliEnv(env));
    expect(prune.code, prune.stderr).toBe(0);
    const p = JSON.parse(prune.stdout) as PruneReport;
    expect(p.deleted).toEqual([]);
    expect(p.kept.map((k) => k.key)).toEqual([suspectKey, first.key]);
  });

  it("vrb hold freezes snapshot and manifest (a delete of the version is refused, prune reports it locked); vrb release lifts it", async () => {
    const held = await runVrb(["hold", first.key, ...scope, "--json"], cliEnv(env));
    expect(held.code, held.stderr).toBe(0);
    const h = JSON.parse(held.stdout) as LegalHoldReport;
    expect(h.objects.map((o) => o.key)).toEqual([first.key, `${first.key}.manifest.json`]);
    const version = h.objects[0]!.versionId;
    expect(await deleteRefused(s3, bucket, first.key, version)).toBe(true);

    const list = await runVrb(["list", ...scope, "--json"], cliEnv(env));
    const row = (JSON.parse(list.stdout) as { snapshots: { key: string; legalHold?: boolean }[] }).snapshots.find((s) => s.key === first.key)!;
    expect(row.legalHold).toBe(true);
    const store = new SnapshotStore(s3StoreOn(s3, bucket, `${cluster}/`));
    const snap = await store.resolve(first.key);
    const plan = await applyRetention(store, { keep: [], delete: [{ snapshot: snap, reason: "test" }] });
    expect(plan.locked).toEqual([expect.objectContaining({ key: first.key, legalHold: true })]);
    expect(plan.deleted).toEqual([]);

    const released = await runVrb(["release", first.key, ...scope], cliEnv(env));
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toContain(`released: s3://${bucket}/${first.key}`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: first.key, VersionId: version }));
    expect(head.ObjectLockLegalHoldStatus ?? "OFF").toBe("OFF");
  });
});

describe("legal hold on the other S3 server kind (no cluster involved)", () => {
  it("legal hold on the other S3 server kind too: held versions refuse deletion, released ones do not", async () => {
    const other: S3ServerKind = sharedEnvOf(PRODUCTS[0]!).s3!.kind === "seaweedfs" ? "moto" : "seaweedfs";
    const server: LocalS3Server = await startS3Server(tempDir(`inv-${other}`), other);
    const c = localS3Client(server);
    try {
      await createLockedBucket(c, "inv-hold");
      const key = "inv/2026/01/01/inv-20260101T000000Z-7.snap";
      await c.send(new PutObjectCommand({ Bucket: "inv-hold", Key: key, Body: "snapshot bytes" }));
      await c.send(new PutObjectCommand({ Bucket: "inv-hold", Key: `${key}.manifest.json`, Body: "{}" }));
      const store = new SnapshotStore(s3StoreOn(c, "inv-hold", "inv/"));
      const held = await setLegalHold(store, key, true);
      expect(held.objects.map((o) => o.key)).toEqual([key, `${key}.manifest.json`]);
      for (const o of held.objects) expect(await deleteRefused(c, "inv-hold", o.key, o.versionId), `${other}: ${o.key}`).toBe(true);
      await setLegalHold(store, key, false);
      for (const o of held.objects) expect(await deleteRefused(c, "inv-hold", o.key, o.versionId)).toBe(false);
    } finally {
      c.destroy();
      await stopS3Server(server);
    }
  });
});
