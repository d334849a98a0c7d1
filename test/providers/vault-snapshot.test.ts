import { createHash, randomBytes } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OperationError, recordRun, scheduleWindow, type BackupPolicyInput } from "../../engine/index.js";
import { sharedEnv, s3For, s3StoreOn } from "../support/env.js";
import { ProviderHost, type Props } from "./host.js";
import { plainOccurrences, runHarness, s3CredentialEnv, testPolicy, type Registered } from "./support.js";

/**
 * VaultSnapshot, end to end without the Pulumi CLI: the resource is constructed from the compiled
 * package under mocks in a plain Node process, and its serialized `__provider` is run by Pulumi's
 * own dynamic-provider host (a fresh process) against the shared OpenBao cluster and S3 server.
 */
describe("VaultSnapshot dynamic provider", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const unsealKeys = env.keys!.unsealKeysB64;
  const policy: BackupPolicyInput = testPolicy(env, "snap");
  const s3 = s3For(env);
  const window = scheduleWindow("6h").id;
  let registered: Registered[];
  let host: ProviderHost;
  let inputs: Props;
  let id: string;
  let state: Props;

  beforeAll(async () => {
    registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys, window });
    host = await ProviderHost.start("VaultSnapshot", s3CredentialEnv(env));
  });
  afterAll(async () => {
    await host?.stop();
  });

  const snap = () => registered.find((r) => r.name === "snap")!;

  it("serializes a provider that loads the engine at run time and captures no secret", () => {
    expect(registered.map((r) => r.type).sort()).toEqual(["pulumi-nodejs:dynamic/vault-raft-backup:StagedRestore", "pulumi-nodejs:dynamic/vault-raft-backup:VaultSnapshot"]);
    for (const r of registered) {
      expect(r.provider).toContain('"vault-raft-backup/engine"');
      expect(r.provider).toContain("import(");
      expect(r.providerSecret).toBe(false);
      for (const secret of [token, ...unsealKeys]) {
        expect(r.provider.includes(secret)).toBe(false);
        // Registered inputs hold the token and keys only inside Pulumi secret wrappers.
        expect(plainOccurrences(r.inputs, secret)).toEqual([]);
      }
    }
    // The wrappers are really there (the search above would pass vacuously otherwise).
    expect(JSON.stringify(snap().inputs.token)).toContain(token);
    expect(snap().inputs.window).toBe(window);
  });

  it("check: names the bad field and passes a valid policy", async () => {
    const base = { ...snap().inputs, token, __provider: snap().provider };
    const bad = await host.check({}, { ...base, policy: { ...policy, destination: { ...policy.destination, bucket: "Bad_Bucket" } } });
    expect(bad.failures).toHaveLength(1);
    expect(bad.failures[0]!.property).toBe("policy");
    expect(bad.failures[0]!.reason).toMatch(/destination\.bucket must be a valid S3 bucket name/);
    const badWindow = await host.check({}, { ...base, window: "tomorrow" });
    expect(badWindow.failures.map((f) => f.property)).toEqual(["window"]);
    // Check is preview-safe: it never dials a node or S3 (nothing listens on these addresses).
    const offline = await host.check(
      {},
      {
        ...base,
        policy: { ...policy, cluster: { ...policy.cluster, nodes: ["http://127.0.0.1:9"] }, destination: { ...policy.destination, endpoint: "http://127.0.0.1:9" } },
      },
    );
    expect(offline.failures).toEqual([]);
    const good = await host.check({}, base);
    expect(good.failures).toEqual([]);
    inputs = good.inputs;
  });

  it("create: takes one snapshot into S3 and returns its facts, without the token", async () => {
    const created = await host.create(inputs);
    id = created.id;
    state = created.outs;
    const key = state.key as string;
    expect(id).toBe(`s3://${env.bucket}/${key}`);
    expect(key.startsWith(`${policy.destination.prefix}${env.clusterName}/`)).toBe(true);
    expect(state).toMatchObject({ status: "good", window, cluster: env.clusterName, problems: [], lockMode: "GOVERNANCE" });
    expect(state.bytes as number).toBeGreaterThan(0);
    expect(state.raftIndex as number).toBeGreaterThan(0);
    expect(state.raftTerm as number).toBeGreaterThan(0);
    expect(String(state.vaultVersion)).toMatch(/\d+\.\d+/);
    expect(Date.parse(state.lockUntil as string)).toBeGreaterThan(Date.now());
    // Independent of the engine: hash what is really in the bucket.
    const obj = await s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: key }));
    const bytes = Buffer.from(await obj.Body!.transformToByteArray());
    expect(bytes.length).toBe(state.bytes);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(state.sha256);
    await s3.send(new HeadObjectCommand({ Bucket: env.bucket, Key: `${key}.manifest.json` }));
    for (const secret of [token, ...unsealKeys]) expect(JSON.stringify(state).includes(secret)).toBe(false);
    expect(host.logs.stderr.includes(token)).toBe(false);
  });

  it("diff: same window is no change; the next window replaces (a new snapshot)", async () => {
    const same = await host.diff(id, state, inputs);
    expect(same).toMatchObject({ changes: "none", replaces: [] });
    const next = scheduleWindow("6h", new Date(Date.parse(window) + 6 * 3_600_000)).id;
    const moved = await host.diff(id, state, { ...inputs, window: next });
    expect(moved.changes).toBe("some");
    expect(moved.replaces).toEqual(["window"]);
    const retention = await host.diff(id, state, { ...inputs, policy: { ...policy, retention: { keepLast: 3 } } });
    expect(retention.changes).toBe("none");
  });

  it("read: a good snapshot stays good", async () => {
    const r = await host.read(id, state, inputs);
    expect(r.id).toBe(id);
    expect(r.outs).toMatchObject({ status: "good", problems: [], key: state.key, sha256: state.sha256 });
    // Beside its own status: the cluster's backups, from the status object create recorded.
    expect(r.outs.clusterConsecutiveFailures).toBe(0);
    expect(Date.parse(r.outs.clusterLastSuccess as string)).toBeLessThanOrEqual(Date.parse(state.takenAt as string));
  });

  it("read: reports the cluster's consecutive failed backups beside the snapshot's own status", async () => {
    const target = { store: s3StoreOn(s3, env.bucket!, policy.destination.prefix ?? ""), cluster: env.clusterName };
    for (let i = 0; i < 2; i++) {
      await recordRun("backup", target, () => Promise.reject(new OperationError("Vault unreachable", { stage: "preflight" }))).catch(() => undefined);
    }
    const r = await host.read(id, state, inputs);
    expect(r.outs).toMatchObject({ status: "good", clusterConsecutiveFailures: 2 });
    expect(await host.logLine(/the last 2 backup\(s\) failed/)).toMatch(/the last 2 backup\(s\) failed/);
  });

  it("delete: leaves the snapshot in the bucket and says why", async () => {
    await host.delete(id, state);
    const head = await s3.send(new HeadObjectCommand({ Bucket: env.bucket, Key: state.key as string }));
    expect(head.ContentLength).toBe(state.bytes);
    expect(await host.logLine(/leaving s3:\/\/.* in place .*retention/)).toMatch(/leaving s3:\/\/.* in place .*retention/);
  });

  it("refresh detects a corrupted snapshot, and the next up replaces it", async () => {
    const key = state.key as string;
    // Same length, different bytes: only a re-download and hash can tell (a new object version).
    const junk = randomBytes(state.bytes as number);
    await s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: key, Body: junk, ContentMD5: createHash("md5").update(junk).digest("base64") }));
    const r = await host.read(id, state, inputs);
    expect(r.outs.status).toBe("corrupt");
    expect((r.outs.problems as string[]).join(" ")).toMatch(/sha|SHA|checksum|archive|gzip/i);
    expect(await host.logLine(/is corrupt/)).toMatch(/is corrupt/);
    const d = await host.diff(id, r.outs, inputs);
    expect(d.changes).toBe("some");
    expect(d.replaces).toContain("status");
  });

  it("refresh detects a deleted snapshot", async () => {
    const key = state.key as string;
    await s3.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: key }));
    const r = await host.read(id, state, inputs);
    expect(r.outs.status).toBe("missing");
    expect((r.outs.problems as string[])[0]).toMatch(/does not exist/);
  });
});
