import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  checkStoredSnapshot,
  DEFAULT_BACKUP_RETRIES,
  runBackup,
  SnapshotStore,
  validatePolicy,
  VaultClient,
  type BackupPolicy,
  type BackupReport,
  type Progress,
} from "../../engine/index.js";
import { waitFor } from "../../engine/wait.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { localDown, localUp, type LocalEnvironment } from "../../devenv/environment.js";
import { fillWithRandomData } from "../../engine/vault/fill.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { cliEnv, PRODUCTS, rootClient, runVrb, s3For, sharedEnvOf, tempDir, backupOn, s3StoreOn } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";

// Every test here runs on each product's shared cluster (OpenBao and HashiCorp Vault), each with its own S3 server.
describe.each(PRODUCTS)("%s", (product) => {
  const env = sharedEnvOf(product);
  const s3 = s3For(env);
  const token = env.keys!.rootToken;
  const bucket = env.bucket!;

  function policyFor(cluster: string, extra: Partial<BackupPolicy> = {}, nodes = env.nodes.map((n) => n.apiAddr)): BackupPolicy {
    return validatePolicy({
      cluster: { name: cluster, nodes },
      destination: { bucket, prefix: `${cluster}/`, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
      ...extra,
    });
  }

  async function download(key: string, versionId?: string): Promise<Buffer> {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  /** Every secret the suite knows: none may appear in any output, report or stored object. */
  function secretsIn(text: string): string[] {
    const secrets = [token, ...env.keys!.unsealKeysB64, env.s3!.secretAccessKey];
    return secrets.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 3)}...`);
  }

  describe("backup of a real cluster with secrets, policies and an auth method", () => {
    const client = rootClient(env);
    let report: BackupReport;
    let committedBefore: number;

    beforeAll(async () => {
      await ensureKvV2(client, "bk-data");
      for (let i = 0; i < 300; i += 20) {
        await Promise.all(Array.from({ length: 20 }, (_, j) => kvPut(client, "bk-data", `app/secret-${i + j}`, { value: `v-${i + j}`, owner: "backup-test" })));
      }
      for (let i = 0; i < 5; i++) {
        await client.put(`sys/policies/acl/bk-policy-${i}`, { policy: `path "bk-data/data/app/*" { capabilities = ["read"] }` });
      }
      await client.post("sys/auth/bk-approle", { type: "approle" });
      const leader = await client.get<{ raft_committed_index: number }>("sys/leader", { anonymous: true });
      committedBefore = leader.body.raft_committed_index;
      report = await runBackup(backupOn(s3, { policy: policyFor("bk-it", { objectLock: { mode: "GOVERNANCE", days: 1 } }), token }));
    });

    afterAll(async () => {
      await client.close();
    });

    it("stores an object whose independent SHA-256 and size match the manifest", async () => {
      const body = await download(report.key);
      const sha = createHash("sha256").update(body).digest("hex");
      expect(sha).toBe(report.sha256);
      expect(body.length).toBe(report.bytes);
      const manifest = JSON.parse((await download(report.manifestKey)).toString("utf8"));
      expect(manifest).toMatchObject({ format: 1, cluster: "bk-it", key: report.key, bytes: body.length, sha256: sha, archive: { entries: 4, verified: true } });
      expect(manifest.tool.name).toBe("vault-raft-backup");
      // The product the cluster runs, from its sys/health: drills and recovers start throwaway nodes of it.
      expect(manifest.vault.product).toBe(product);
      expect(report.vault.product).toBe(product);
      // The source cluster's seal, from sys/seal-status at preflight: the shared cluster is Shamir-sealed.
      expect(manifest.vault.seal).toEqual({ type: "shamir", recoverySeal: false });
      expect(report.vault.seal).toEqual({ type: "shamir", recoverySeal: false });
      expect(report.key).toMatch(new RegExp(`^bk-it/bk-it/\\d{4}/\\d{2}/\\d{2}/bk-it-\\d{8}T\\d{6}Z-${report.raft.index}\\.snap$`));
      expect(report.manifestKey).toBe(`${report.key}.manifest.json`);
    });

    it("records a raft index at least the one committed before the backup, from the archive's meta.json", async () => {
      expect(report.raft.index).toBeGreaterThanOrEqual(committedBefore);
      expect(report.raft.term).toBeGreaterThan(0);
      const health = await Promise.all(env.nodes.map((n) => nodeHealth(client.forNode(n.apiAddr))));
      expect(report.vault.leaderAddr).toBe(health.find((h) => h.role === "active")!.addr);
      expect(report.durationsMs.transfer).toBeGreaterThanOrEqual(0);
    });

    it("locks the object: retention mode and until read back from S3", async () => {
      const store = new SnapshotStore(s3StoreOn(s3, bucket, "bk-it/"));
      const r = await store.retention(report.key);
      expect(r.mode).toBe("GOVERNANCE");
      const expected = new Date(report.takenAt).getTime() + 86_400_000;
      expect(Math.abs(r.until!.getTime() - expected)).toBeLessThan(2_000);
      expect(report.lock).toEqual({ mode: "GOVERNANCE", until: r.until!.toISOString() });
      const manifestLock = await store.retention(report.manifestKey);
      expect(manifestLock.mode).toBe("GOVERNANCE");
    });

    it("lists the snapshot as good and a deep check agrees", async () => {
      const store = new SnapshotStore(s3StoreOn(s3, bucket, "bk-it/"));
      const list = await store.list("bk-it");
      expect(list[0]).toMatchObject({ key: report.key, status: "good" });
      const health = await checkStoredSnapshot(store, report.key, { deep: true });
      expect(health).toMatchObject({ status: "good", problems: [] });
      expect((await checkStoredSnapshot(store, report.key.replace(".snap", "0.snap"))).status).toBe("missing");
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "bk-it/" }));
      expect(uploads.Uploads ?? []).toEqual([]);
    });

    it("finds the active node when pointed at a standby only", async () => {
      const health = await Promise.all(env.nodes.map((n) => nodeHealth(client.forNode(n.apiAddr))));
      const standby = health.find((h) => h.role === "standby")!;
      const active = health.find((h) => h.role === "active")!;
      const r = await runBackup(backupOn(s3, { policy: policyFor("bk-standby", {}, [standby.addr]), token }));
      expect(r.vault.leaderAddr).toBe(active.addr);
      expect((await checkStoredSnapshot(new SnapshotStore(s3StoreOn(s3, bucket, "bk-standby/")), r.key)).status).toBe("good");
    });
  });

  // A cluster of its own: stepping down the shared cluster's leader would disturb the files running beside this one.
  describe("a leader step-down (sys/step-down) around a backup listing a standby first", () => {
    let own: LocalEnvironment;
    let ownClient: VaultClient;

    beforeAll(async () => {
      own = await localUp({ product, dir: tempDir(`bk-stepdown-${product}`), nodes: 3, s3: false, clusterName: "bk-stepdown" });
      ownClient = new VaultClient({ addr: own.nodes[0]!.apiAddr, token: own.keys!.rootToken });
      // ~16 MiB of random data: a stream long enough to step down in the middle of it.
      await fillWithRandomData(ownClient, { bytes: 16 * 1024 * 1024 });
    });

    afterAll(async () => {
      await ownClient?.close();
      if (own) await localDown(own.dir);
    });

    const activeAddr = () =>
      waitFor(
        async () => {
          const health = await Promise.all(own.nodes.map((n) => nodeHealth(ownClient.forNode(n.apiAddr))));
          return health.find((h) => h.role === "active")?.addr;
        },
        { what: "an active node", timeoutMs: 60_000, intervalMs: 100 },
      );
    /** The standbys first, the active node last: the backup must find the leader itself. */
    const standbyFirst = (active: string) => [...own.nodes.map((n) => n.apiAddr).filter((a) => a !== active), active];

    for (const at of ["before", "mid-stream"] as const) {
      it(`step-down ${at === "before" ? "just before the backup" : "early in the snapshot stream"}: a good snapshot from the leader of the moment`, async () => {
        const victim = await activeAddr();
        const stepDown = () => ownClient.forNode(victim).put("sys/step-down", {}, { timeoutMs: 10_000 });
        let stepped: Promise<unknown> | undefined;
        if (at === "before") await stepDown();
        const progress: Progress = {
          info() {},
          warn() {},
          bytes(stage: string, done: number) {
            if (at === "mid-stream" && !stepped && stage === "snapshot stream" && done >= 1024 * 1024) stepped = stepDown();
          },
        };
        const cluster = `bk-stepdown-${at}`;
        const report = await runBackup(
          backupOn(s3, { policy: policyFor(cluster, {}, standbyFirst(victim)), token: own.keys!.rootToken, progress, retries: DEFAULT_BACKUP_RETRIES }),
        );
        await stepped;
        if (at === "mid-stream") expect(stepped).toBeDefined();
        expect(report.vault.product).toBe(product);
        const health = await checkStoredSnapshot(new SnapshotStore(s3StoreOn(s3, bucket, `${cluster}/`)), report.key, { deep: true });
        expect(health).toMatchObject({ status: "good", problems: [] });
      });
    }
  });

  describe("vrb backup | list | verify from the shell", () => {
    const base = cliEnv(env);
    const outputs: string[] = [];
    const vrb = async (args: string[], extra: Record<string, string> = {}) => {
      const r = await runVrb(args, { ...base, ...extra });
      outputs.push(r.stdout, r.stderr);
      return r;
    };

    it("backs up with --json, lists it as good, verifies latest; a corrupted byte makes verify exit 3", async () => {
      const args = ["--cluster", "bk-cli", "--prefix", "bk-cli/"];
      const b = await vrb(["backup", ...args, "--json"]);
      expect(b.code, b.stderr).toBe(0);
      const report = JSON.parse(b.stdout) as BackupReport;
      expect(report).toMatchObject({ ok: true, bucket, raft: { index: expect.any(Number) }, vault: { leaderAddr: expect.any(String) } });
      expect(Object.keys(report.durationsMs)).toEqual(expect.arrayContaining(["preflight", "transfer", "manifest", "total"]));
      expect(b.stderr).toMatch(/active node http:\/\/127\.0\.0\.1:\d+/);
      expect(b.stderr).toMatch(/snapshot stream: .*\/s\)/);

      const text = await vrb(["backup", ...args]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/^s3:\/\/vrb-snapshots\/bk-cli\/bk-cli\//);

      const list = await vrb(["list", ...args, "--json", "--check-rpo"]);
      expect(list.code, list.stderr).toBe(0);
      const listed = JSON.parse(list.stdout) as { rpo: { ok: boolean }; snapshots: { key: string; status: string; product?: string }[] };
      expect(listed.rpo.ok).toBe(true);
      expect(listed.snapshots.map((s) => s.product)).toEqual([product, product]);
      expect(listed.snapshots.map((s) => s.status)).toEqual(["good", "good"]);
      expect(listed.snapshots[1]!.key).toBe(report.key);

      const ok = await vrb(["verify", "latest", ...args, "--json"]);
      expect(ok.code, ok.stderr).toBe(0);
      const verified = JSON.parse(ok.stdout) as { ok: boolean; archive: { checked: string[] } };
      expect(verified.ok).toBe(true);
      // SHA256SUMS lists its files in no fixed order.
      expect([...verified.archive.checked].sort()).toEqual(["meta.json", "state.bin"]);

      // One flipped byte in a new version of the object: same size, so only the re-download notices.
      const bytes = await download(report.key);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: report.key, Body: bytes }));
      const bad = await vrb(["verify", `s3://${bucket}/${report.key}`, "--json"], { VRB_BUCKET: "", VRB_CLUSTER: "" });
      expect(bad.code, bad.stderr).toBe(3);
      expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, exitCode: 3 });
      const store = new SnapshotStore(s3StoreOn(s3, bucket, "bk-cli/"));
      expect((await checkStoredSnapshot(store, report.key, { deep: true })).status).toBe("corrupt");
    });

    it("stops cleanly on SIGTERM (a pod being evicted): exit 143 naming the stage, no manifest, no snapshot object, no unfinished upload, no retry", async () => {
      // S3 behind a proxy that holds every upload request 20 s: the signal arrives while the
      // snapshot's upload is under way, and the proxy drops a held request whose client went away.
      // (It used to miss that when the body filled its socket's buffers: a paused socket does not
      // see its client go, and the held PUT reached S3 after vrb had stopped; fixed in the proxy.)
      const proxy = await new FaultProxy(env.s3!.endpoint).start();
      proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, fault: { kind: "delay", ms: 20_000 } }];
      try {
        const r = await runVrb(
          ["backup", "--cluster", "bk-term", "--prefix", "bk-term/", "--retries", "2"],
          { ...base, AWS_ENDPOINT_URL_S3: proxy.url },
          {
            interrupt: { when: /uploading to s3:\/\//, signal: "SIGTERM" },
          },
        );
        outputs.push(r.stdout, r.stderr);
        expect(r.code, r.stderr).toBe(143);
        expect(r.stderr).toMatch(/interrupted \(SIGTERM\) during stage (stream|upload|archive check)/);
        expect(r.stderr).not.toMatch(/retrying/);
        // Past the proxy's hold: a held request that reached S3 late would show up now.
        await new Promise((resolve) => setTimeout(resolve, 21_000));
        const objects = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "bk-term/bk-term/" }));
        // Only the cluster's status object, which records the interrupted run as a failure.
        expect((objects.Contents ?? []).map((o) => o.Key)).toEqual(["bk-term/bk-term/vrb-status.json"]);
        const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: "bk-term/" }));
        expect(uploads.Uploads ?? []).toEqual([]);
      } finally {
        await proxy.stop();
      }
    });

    it("rejects bad input with exit 2 before anything is done, naming the field and the fix", async () => {
      const dir = tempDir("bk-policy");
      const file = join(dir, "policy.yaml");
      writeFileSync(file, `cluster: { name: bk-bad, nodes: ["${env.nodes[0]!.apiAddr}"] }\ndestination: { bucket: ${bucket}, prefix: bk-bad/ }\nretention: { keepLast: 0 }\n`);
      const bad = await vrb(["backup", "--policy", file, "--json"]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/retention\.keepLast must be at least 1/);
      expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, exitCode: 2 });

      writeFileSync(file, `cluster: { name: bk-bad, nodes: ["${env.nodes[0]!.apiAddr}"] }\ndestination: { bukket: ${bucket} }\n`);
      const unknown = await vrb(["backup", "--policy", file], { VRB_BUCKET: "" });
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/destination\.bukket/);

      const noToken = await vrb(["backup", "--cluster", "bk-bad"], { VAULT_TOKEN: "", BAO_TOKEN: "" });
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toMatch(/no Vault token: set VAULT_TOKEN/);

      const badRetries = await vrb(["backup", "--retries", "-1"]);
      expect(badRetries.code).toBe(2);
      const listed = await new SnapshotStore(s3StoreOn(s3, bucket, "bk-bad/")).list("bk-bad");
      expect(listed).toEqual([]);
    });

    it("never prints a token, unseal key or S3 secret key", () => {
      expect(outputs.length).toBeGreaterThan(0);
      expect(secretsIn(outputs.join("\n"))).toEqual([]);
    });
  });
});
