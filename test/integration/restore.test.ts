import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  IntegrityError,
  SnapshotStore,
  VaultClient,
  restoreReportOf,
  runBackup,
  stagedRestore,
  type BackupReport,
  type DrillReport,
  type RestoreReport,
} from "../../engine/index.js";
import { startFreshNodes, stopNode, wipeNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { snapshotKeyFor } from "../../engine/snapshot/manifest.js";
import { productProfile } from "../../engine/vault/product.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { raftConfiguration, waitForHealthyVoters } from "../../engine/vault/raft-peers.js";
import { kvInventory } from "../../engine/restore/inventory.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { addNodes, localDown, localUp, saveEnvironment, type LocalEnvironment } from "../../devenv/environment.js";
import { VaultHttpError } from "../../engine/vault/client.js";
import { cliEnv, PRODUCTS, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";
import { expectAllSecretsEqual, inBatches, policyInSharedBucket, seedVersionedSecrets, type WrittenSecrets } from "../support/restore-fixtures.js";

// Every test here runs once per product (OpenBao, HashiCorp Vault): sources, targets and throwaway
// nodes of that product, backups in that product's shared S3 server.
describe.each(PRODUCTS)("%s", (product) => {
  // One seeded 3-node source cluster (A) and one 1-node source (B), each backed up once with the
  // backup engine into the shared S3 server; every restore below starts from those backups.
  const shared = sharedEnvOf(product);
  const s3 = s3For(shared);
  const bucket = shared.bucket!;
  const run = Date.now().toString(36);
  const prefix = `restore-it-${product}-${run}/`;
  const SECRETS = 500;
  const VERSIONS = 3;

  let A: LocalEnvironment;
  let B: LocalEnvironment;
  let backupA: BackupReport;
  let keysFileA: string;
  let keysFileB: string;
  let appToken: string;
  /** path -> value of each version, as written to cluster A. */
  let written: WrittenSecrets = new Map();
  const extraNodes: LocalNode[] = [];

  const policyFor = (cluster: string, nodes: string[]) => policyInSharedBucket(shared, prefix, cluster, nodes);

  const store = () => new SnapshotStore(s3StoreOn(s3, bucket, prefix));
  const root = (envState: LocalEnvironment, addr = envState.nodes[0]!.apiAddr) => new VaultClient({ addr, token: envState.keys!.rootToken });

  /**
   * The format `bao operator init -format=json` prints. Without the root token by default: the usual
   * case, where the original root token was revoked long ago and only the keys are kept.
   */
  function writeKeysFile(envState: LocalEnvironment, name: string, opts: { rootToken?: boolean } = {}): string {
    const path = join(tempDir("restore-keys"), name);
    const doc = { unseal_keys_b64: envState.keys!.unsealKeysB64, unseal_threshold: envState.keys!.threshold, ...(opts.rootToken ? { root_token: envState.keys!.rootToken } : {}) };
    writeFileSync(path, JSON.stringify(doc), { mode: 0o600 });
    return path;
  }

  const unsealKeysOf = (envState: LocalEnvironment, count = envState.keys!.unsealKeysB64.length) => ({
    kind: "unseal" as const,
    keys: envState.keys!.unsealKeysB64.slice(0, count),
  });

  /** Every secret value this file knows; none may appear in any output. */
  function leakedSecrets(text: string): string[] {
    const secrets = [A.keys!.rootToken, ...A.keys!.unsealKeysB64, B.keys!.rootToken, ...B.keys!.unsealKeysB64, appToken];
    return secrets.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);
  }

  function stepsNamed(report: RestoreReport, name: string) {
    return report.steps.filter((s) => s.step.startsWith(name));
  }

  beforeAll(async () => {
    [A, B] = await Promise.all([
      localUp({ product, dir: tempDir("restore-src-a"), nodes: 3, s3: false, clusterName: "rst-a" }),
      localUp({ product, dir: tempDir("restore-src-b"), nodes: 1, s3: false, clusterName: "rst-b", shares: 3, threshold: 2 }),
    ]);
    const a = root(A);
    await ensureKvV2(a, "secret");
    const paths = Array.from({ length: SECRETS }, (_, i) => `team-${i % 10}/app-${String(i).padStart(3, "0")}`);
    written = await seedVersionedSecrets(a, "secret", paths, VERSIONS, run);
    await kvPut(a, "secret", "dr-canary", { ok: "yes" });
    await a.put("sys/policies/acl/app-reader", { policy: 'path "secret/data/*" { capabilities = ["read"] }' });
    await a.post("sys/auth/userpass", { type: "userpass" });
    await a.post("auth/userpass/users/alice", { password: `pw-${run}`, token_policies: ["app-reader"] });
    appToken = (await a.post<{ auth: { client_token: string } }>("auth/token/create", { policies: ["app-reader"], ttl: "24h" })).body.auth.client_token;
    backupA = await runBackup({
      policy: policyFor(
        "rst-a",
        A.nodes.map((n) => n.apiAddr),
      ),
      token: A.keys!.rootToken,
      store: s3StoreOn(s3, bucket, prefix),
    });
    await a.close();

    const b = root(B);
    await ensureKvV2(b, "kv");
    await inBatches(
      Array.from({ length: 30 }, (_, i) => i),
      30,
      async (i) => void (await kvPut(b, "kv", `item-${i}`, { n: String(i) })),
    );
    await kvPut(b, "kv", "dr-canary", { ok: "yes" });
    await runBackup({
      policy: policyFor(
        "rst-b",
        B.nodes.map((n) => n.apiAddr),
      ),
      token: B.keys!.rootToken,
      store: s3StoreOn(s3, bucket, prefix),
    });
    await b.close();
    keysFileA = writeKeysFile(A, "a-keys.json");
    keysFileB = writeKeysFile(B, "b-keys.json", { rootToken: true });
  });

  afterAll(async () => {
    await Promise.all(extraNodes.map((n) => stopNode(n)));
    if (A) await localDown(A.dir);
    if (B) await localDown(B.dir);
    s3.destroy();
  });

  const restoreArgs = (nodes: string[], keysFile: string, cluster: string) => [
    "restore",
    "latest",
    "--nodes",
    nodes.join(","),
    "--unseal-keys-file",
    keysFile,
    "--cluster",
    cluster,
    "--prefix",
    prefix,
    "--json",
  ];
  const cliEnvNoToken = () => {
    const e = cliEnv(shared);
    delete e.VAULT_TOKEN;
    delete e.BAO_TOKEN;
    return e;
  };

  describe("staged restore (real Raft clusters + real S3 server)", () => {
    it("refuses a target that is initialised and holds data, says what it found, and changes nothing", async () => {
      const a = root(A);
      const before = await a.get<{ raft_committed_index: number }>("sys/leader");
      const r = await runVrb(
        restoreArgs(
          A.nodes.map((n) => n.apiAddr),
          keysFileA,
          "rst-a",
        ),
        cliEnvNoToken(),
      );
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/refusing to rebuild onto nodes that are initialised/);
      for (const n of A.nodes) expect(r.stderr).toContain(n.apiAddr);
      const report = JSON.parse(r.stdout) as RestoreReport & { error: { message: string } };
      expect(report.ok).toBe(false);
      expect(report.steps.map((s) => s.step)).not.toContain("initialise node 1 with a throwaway keyring");
      const roles = await Promise.all(A.nodes.map((n) => nodeHealth(a.forNode(n.apiAddr)).then((h) => h.role)));
      expect(roles.sort()).toEqual(["active", "standby", "standby"]);
      expect(await kvGet(a, "secret", "team-1/app-001")).toEqual({ value: written.get("team-1/app-001")![2] });
      const after = await a.get<{ raft_committed_index: number }>("sys/leader");
      // Nothing but Vault's own housekeeping may have been written.
      expect(after.body.raft_committed_index - before.body.raft_committed_index).toBeLessThan(5);
      expect(leakedSecrets(r.stdout + r.stderr)).toEqual([]);
      await a.close();
    });

    it("a corrupt snapshot stops the restore before any node is touched; so do wrong unseal keys (proven against the snapshot offline)", async () => {
      const targets = await startFreshNodes(tempDir("restore-refuse"), 2, { idPrefix: "refuse", shape: { product } });
      extraNodes.push(...targets);
      const addrs = targets.map((n) => n.apiAddr);
      // A copy of A's snapshot with one byte flipped, beside A's (unchanged) manifest.
      const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backupA.key }))).Body!.transformToByteArray());
      body[Math.floor(body.length / 2)]! ^= 0xff;
      const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: backupA.manifestKey }))).Body!.transformToString());
      const badKey = snapshotKeyFor(prefix, "rst-corrupt", new Date(backupA.takenAt), backupA.raft.index);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: badKey, Body: body }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${badKey}.manifest.json`, Body: JSON.stringify({ ...manifest, cluster: "rst-corrupt", key: badKey }) }));

      const corrupt = await stagedRestore({ mode: "rebuild", nodes: addrs, store: store(), snapshot: "latest", cluster: "rst-corrupt", keys: unsealKeysOf(A) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(corrupt).toBeInstanceOf(IntegrityError);
      expect((corrupt as Error).message).toMatch(/nothing was changed/);
      expect(restoreReportOf(corrupt)!.steps.find((s) => s.result === "failed")?.step).toBe("download and verify snapshot");
      for (const a of addrs) expect((await nodeHealth(new VaultClient({ addr: a }))).role).toBe("uninitialized");

      // B's keys cannot open A's snapshot: refused in preflight (exit 2), from the snapshot itself
      // (engine/restore/key-proof.ts; test/integration/restore-keys-offline.test.ts has the CLI side).
      const wrong = await stagedRestore({ mode: "rebuild", nodes: addrs, store: store(), snapshot: backupA.key, keys: unsealKeysOf(B) }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(wrong).toMatchObject({ exitCode: 2 });
      const failed = restoreReportOf(wrong)!.steps.find((s) => s.result === "failed")!;
      expect(failed.step).toBe("prove the unseal keys against the snapshot");
      expect(wrong!.message).toMatch(/these keys do not open this snapshot's root key; use the unseal keys of the cluster that took it/);
      for (const a of addrs) expect(wrong!.message).toContain(`${a}: uninitialized`);
      expect(wrong!.message).toMatch(/next: nothing was changed on any node/);
      expect(leakedSecrets(wrong!.message + JSON.stringify(restoreReportOf(wrong)))).toEqual([]);
      await Promise.all(targets.map((n) => stopNode(n)));
    });

    it("rebuilds a lost 3-node cluster into 3 new nodes with the product's default listener and no token at all: every secret, version, policy, auth method and token is back", async () => {
      const oldAddrs = A.nodes.map((n) => n.apiAddr);
      await Promise.all(A.nodes.map((n) => wipeNode(n)));
      const fresh = await addNodes(A, 3);
      // The lost nodes leave the environment's state: from here on A is the rebuilt cluster.
      A.nodes = fresh;
      saveEnvironment(A);
      expect(fresh.map((n) => n.apiAddr).some((a) => oldAddrs.includes(a))).toBe(false);
      // No VAULT_TOKEN, no root token in the keys file, the listener's defaults: generate-root disabled
      // on OpenBao, served on Vault 1.x (productProfile says which).
      const r = await runVrb(
        restoreArgs(
          fresh.map((n) => n.apiAddr),
          keysFileA,
          "rst-a",
        ),
        cliEnvNoToken(),
      );
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as RestoreReport;
      expect(report.ok).toBe(true);
      expect(report.snapshot.key).toBe(backupA.key);
      expect(report.snapshot.sha256).toBe(backupA.sha256);
      expect(report.seal).toEqual({ type: "shamir", recoverySeal: false });
      expect(report.snapshot.product).toBe(product);
      expect(report.nodes.map((n) => n.role).sort()).toEqual(["active", "standby", "standby"]);
      for (const n of report.nodes) expect(n.raftIndex!).toBeGreaterThanOrEqual(backupA.raft.index);
      if (productProfile(product).generateRootByDefault) {
        // Vault 1.x serves generate-root by default: a short-lived root token made from the keys
        // verifies everything, and is revoked.
        expect(report.token).toBe("generated");
        expect(report.verification).toBe("full");
        expect(report.notVerified).toEqual([]);
        expect(report.autopilot).toEqual({ healthy: true, failureTolerance: 1 });
        expect(stepsNamed(report, "revoke generated root token")[0]?.result).toBe("ok");
      } else {
        // What needs no token was proven; what needs one is said, with the command to check it later.
        expect(report.token).toBe("none");
        expect(report.verification).toBe("health");
        expect(report.notVerified.map((n) => n.check)).toEqual(expect.arrayContaining(["raft voters and autopilot health", "stale peers of the old cluster"]));
        expect(report.notVerified.find((n) => n.check === "raft voters and autopilot health")!.command).toContain(
          `bao operator raft autopilot state -address=${fresh[0]!.apiAddr}`,
        );
        expect(r.stderr).toMatch(/not verified without a token: .*raft voters and autopilot health/);
        expect(report.steps.some((s) => s.step.startsWith("revoke generated root token"))).toBe(false);
      }
      expect(report.steps.every((s) => s.result !== "failed")).toBe(true);
      expect(r.stderr).toMatch(/join node 3 to node 1/);

      // The test's own token (the original root token, part of the restored data) checks the rest.
      const client = root(A, fresh[2]!.apiAddr);
      const voters = await waitForHealthyVoters(client, 3, 60_000);
      expect(
        voters.servers
          .filter((s) => s.voter)
          .map((s) => s.node_id)
          .sort(),
      ).toEqual(fresh.map((n) => n.id).sort());
      expect(voters.autopilot.failure_tolerance).toBe(1);
      await expectAllSecretsEqual(client, "secret", written);
      expect((await kvInventory(client)).find((m) => m.mount === "secret")?.secrets).toBe(SECRETS + 1);
      const policy = await client.get<{ data: { policy: string } }>("sys/policies/acl/app-reader");
      expect(policy.body.data.policy).toContain("secret/data/*");
      const auths = await client.get<{ data: Record<string, unknown> }>("sys/auth");
      expect(Object.keys(auths.body.data)).toContain("userpass/");
      const login = await new VaultClient({ addr: fresh[1]!.apiAddr }).post<{ auth: { policies: string[] } }>("auth/userpass/login/alice", { password: `pw-${run}` });
      expect(login.body.auth.policies).toContain("app-reader");
      const app = new VaultClient({ addr: fresh[0]!.apiAddr, token: appToken });
      expect(await kvGet(app, "secret", "team-2/app-002", 2)).toEqual({ value: written.get("team-2/app-002")![1] });

      expect(leakedSecrets(r.stdout + r.stderr)).toEqual([]);
      await Promise.all([client.close(), app.close()]);
    });

    it("rolls a live cluster back in place: overwritten and deleted secrets come back", async () => {
      const a = root(A);
      await kvPut(a, "secret", "rollback/x", { value: "old" });
      await kvPut(a, "secret", "rollback/y", { value: "keep" });
      const backup = await runBackup({
        policy: policyFor(
          "rst-a",
          A.nodes.map((n) => n.apiAddr),
        ),
        token: A.keys!.rootToken,
        store: s3StoreOn(s3, bucket, prefix),
      });
      await kvPut(a, "secret", "rollback/x", { value: "new" });
      await a.delete("secret/metadata/rollback/y");
      expect(await kvGet(a, "secret", "rollback/y")).toBeUndefined();

      const report = await stagedRestore({
        mode: "in-place",
        nodes: A.nodes.map((n) => n.apiAddr),
        store: store(),
        snapshot: `s3://${bucket}/${backup.key}`,
        token: A.keys!.rootToken,
        canaries: ["secret/data/rollback/y"],
      });
      expect(report.ok).toBe(true);
      expect(report.mode).toBe("in-place");
      expect(report.verification).toBe("full");
      expect(report.autopilot?.healthy).toBe(true);
      expect(report.canaries).toEqual([{ path: "secret/data/rollback/y", ok: true }]);
      expect(stepsNamed(report, "restore snapshot (snapshot)")[0]?.result).toBe("ok");
      for (const n of A.nodes) {
        const c = root(A, n.apiAddr);
        expect(await kvGet(c, "secret", "rollback/x")).toEqual({ value: "old" });
        expect(await kvGet(c, "secret", "rollback/y")).toEqual({ value: "keep" });
        await c.close();
      }
      await a.close();
    });

    it("rebuilds into a different size, 3 -> 5 nodes, on targets that serve generate-root: a short-lived root token verifies everything and is revoked", async () => {
      await localDown(A.dir);
      // The non-default relaxation, on purpose: this is the test of the generate-root path.
      const targets = await startFreshNodes(tempDir("restore-five"), 5, { idPrefix: "five", shape: { product, unauthedGenerateRoot: true } });
      extraNodes.push(...targets);
      const report = await stagedRestore({
        mode: "rebuild",
        nodes: targets.map((n) => n.apiAddr),
        store: store(),
        snapshot: `s3://${bucket}/${backupA.key}`,
        keys: unsealKeysOf(A, A.keys!.threshold),
        canaries: ["secret/data/dr-canary"],
      });
      expect(report.ok).toBe(true);
      expect(report.token).toBe("generated");
      expect(report.verification).toBe("full");
      expect(report.notVerified).toEqual([]);
      expect(report.nodes).toHaveLength(5);
      expect(report.nodes.every((n) => n.voter)).toBe(true);
      expect(report.nodes.map((n) => n.nodeId).sort()).toEqual(targets.map((n) => n.id).sort());
      expect(report.autopilot).toEqual({ healthy: true, failureTolerance: 2 });
      expect(report.canaries).toEqual([{ path: "secret/data/dr-canary", ok: true }]);
      // The generated root token was revoked: its accessor no longer resolves.
      const revoke = stepsNamed(report, "revoke generated root token")[0]!;
      expect(revoke.result).toBe("ok");
      const accessor = /accessor (\S+) revoked/.exec(revoke.detail!)![1]!;
      const c = new VaultClient({ addr: targets[4]!.apiAddr, token: A.keys!.rootToken });
      const lookup = await c.post("auth/token/lookup-accessor", { accessor }).then(
        () => "found",
        (e: unknown) => (e instanceof VaultHttpError ? e.status : String(e)),
      );
      expect(lookup).not.toBe("found");
      await expectAllSecretsEqual(c, "secret", written);
      const config = await raftConfiguration(c);
      expect(config.servers.map((s) => s.node_id).sort()).toEqual(targets.map((n) => n.id).sort());
      await c.close();
      await Promise.all(targets.map((n) => stopNode(n)));
    });

    it("vrb drill rebuilds a 1-node cluster's snapshot into 3 throwaway nodes (1 -> 3), counts secrets, reports the RTO and tears down", async () => {
      const r = await runVrb(
        ["drill", "--cluster", "rst-b", "--prefix", prefix, "--unseal-keys-file", keysFileB, "--canary", "kv/data/dr-canary", "--min-secrets", "31", "--json"],
        cliEnvNoToken(),
      );
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as DrillReport;
      expect(report.ok).toBe(true);
      expect(report.nodes).toBe(3);
      // The throwaway nodes run the snapshot's own product, which its manifest records.
      expect(report.snapshot.product).toBe(product);
      expect(report.throwaway.product).toBe(product);
      // The keys file carries the init root token: it comes back with the snapshot and verifies fully.
      expect(report.restore.token).toBe("keys-file");
      expect(report.restore.nodes.every((n) => n.voter)).toBe(true);
      expect(report.restore.autopilot).toEqual({ healthy: true, failureTolerance: 1 });
      expect(report.inventory.find((m) => m.mount === "kv")?.secrets).toBe(31);
      expect(report.canaries).toEqual([{ path: "kv/data/dr-canary", ok: true }]);
      expect(report.rtoMs).toBeGreaterThanOrEqual(report.restore.durationMs);
      expect(report.teardown.stopped).toBe(3);
      expect(existsSync(report.teardown.removed)).toBe(false);
      expect(leakedSecrets(r.stdout + r.stderr)).toEqual([]);
      // The source cluster is untouched by a drill.
      expect((await nodeHealth(new VaultClient({ addr: B.nodes[0]!.apiAddr }))).role).toBe("active");
    });
  });
});
