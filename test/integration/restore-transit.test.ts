import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, SnapshotStore, VaultClient, restoreReportOf, runBackup, stagedRestore, type BackupReport, type DrillReport, type RestoreReport } from "../../engine/index.js";
import { startFreshNodes, startNode, stopNode, transitSealStanza, wipeNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { productProfile } from "../../engine/vault/product.js";
import { nodeHealth, sealStatus } from "../../engine/vault/operations.js";
import { waitForHealthyVoters } from "../../engine/vault/raft-peers.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { addNodes, createTransitKey, localDown, localUp, nodeShapeOf, saveEnvironment, type LocalEnvironment } from "../../devenv/environment.js";
import { cliEnv, PRODUCTS, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";
import { expectAllSecretsEqual, policyInSharedBucket, seedVersionedSecrets, type WrittenSecrets } from "../support/restore-fixtures.js";

// An auto-unseal cluster as most production clusters run: a transit seal (the seal server is a
// separate OpenBao for both products: infrastructure, as a central KMS is), the product's default
// listener settings, recovery keys instead of unseal keys. One seeded 3-node source (T) backed up
// once; the product's shared Shamir cluster backed up beside it. Once per product.
describe.each(PRODUCTS)("%s", (product) => {
  const profile = productProfile(product);
  const shared = sharedEnvOf(product);
  const s3 = s3For(shared);
  const bucket = shared.bucket!;
  const run = Date.now().toString(36);
  const prefix = `restore-transit-${product}-${run}/`;
  const SECRETS = 200;

  let T: LocalEnvironment;
  let backupT: BackupReport;
  let backupShamir: BackupReport;
  let recoveryKeysFile: string;
  /** An operator's token of the original cluster, not root: what a team keeps when the root token is long revoked. */
  let operatorToken: string;
  let written: WrittenSecrets = new Map();
  const extraNodes: LocalNode[] = [];

  const policyFor = (cluster: string, nodes: string[]) => policyInSharedBucket(shared, prefix, cluster, nodes);
  const store = () => new SnapshotStore(s3StoreOn(s3, bucket, prefix));
  const root = (addr = T.nodes[0]!.apiAddr) => new VaultClient({ addr, token: T.keys!.rootToken });
  const recoveryKeys = () => ({ kind: "recovery" as const, keys: T.keys!.recoveryKeysB64! });

  function leakedSecrets(text: string): string[] {
    const secrets = [T.keys!.rootToken, operatorToken, ...T.keys!.recoveryKeysB64!, T.transitSeal!.token, T.transitSeal!.rootToken, ...Object.values(T.transitSeal!.otherKeys)];
    return secrets.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);
  }

  async function rolesOf(addrs: string[]): Promise<string[]> {
    return Promise.all(addrs.map(async (addr) => (await nodeHealth(new VaultClient({ addr }))).role));
  }

  async function refusal(p: Promise<unknown>): Promise<Error> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ConfigError);
    return err!;
  }

  beforeAll(async () => {
    T = await localUp({ product, dir: tempDir(`restore-transit-src-${product}`), nodes: 3, s3: false, clusterName: "rst-t", seal: "transit" });
    const t = root();
    await ensureKvV2(t, "secret");
    const paths = Array.from({ length: SECRETS }, (_, i) => `svc-${i % 5}/cred-${String(i).padStart(3, "0")}`);
    written = await seedVersionedSecrets(t, "secret", paths, 2, run);
    await kvPut(t, "secret", "dr-canary", { ok: "yes" });
    await t.put("sys/policies/acl/dr-operator", {
      policy: [
        'path "sys/seal" { capabilities = ["update", "sudo"] }',
        'path "sys/storage/raft/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }',
        'path "sys/ha-status" { capabilities = ["read"] }',
        'path "secret/data/*" { capabilities = ["read"] }',
      ].join("\n"),
    });
    operatorToken = (await t.post<{ auth: { client_token: string } }>("auth/token/create", { policies: ["dr-operator"], period: "24h", no_parent: true })).body.auth.client_token;
    backupT = await runBackup({
      policy: policyFor(
        "rst-t",
        T.nodes.map((n) => n.apiAddr),
      ),
      token: T.keys!.rootToken,
      store: s3StoreOn(s3, bucket, prefix),
    });
    await t.close();
    backupShamir = await runBackup({
      policy: policyFor(
        "rst-shamir",
        shared.nodes.map((n) => n.apiAddr),
      ),
      token: shared.keys!.rootToken,
      store: s3StoreOn(s3, bucket, prefix),
    });
    // What `bao operator init -format=json` prints for an auto-unseal cluster; the root token was revoked long ago.
    recoveryKeysFile = join(tempDir("restore-transit-keys"), "init.json");
    writeFileSync(recoveryKeysFile, JSON.stringify({ unseal_keys_b64: [], recovery_keys_b64: T.keys!.recoveryKeysB64, recovery_keys_threshold: T.keys!.threshold }), {
      mode: 0o600,
    });
  });

  afterAll(async () => {
    await Promise.all(extraNodes.map((n) => stopNode(n)));
    if (T) await localDown(T.dir);
    s3.destroy();
  });

  describe(`staged restore of an auto-unseal (transit) cluster (real ${profile.displayName} + OpenBao transit seal server + S3)`, () => {
    it("each backup's manifest records the source cluster's seal", async () => {
      expect((await store().resolve(`s3://${bucket}/${backupT.key}`)).manifest?.vault.seal).toEqual({ type: "transit", recoverySeal: true });
      expect((await store().resolve(`s3://${bucket}/${backupShamir.key}`)).manifest?.vault.seal).toEqual({ type: "shamir", recoverySeal: false });
    });

    it("refuses, before touching any node: a Shamir snapshot onto transit targets, a transit snapshot onto Shamir targets, targets with mixed seals", async () => {
      const dir = tempDir("restore-transit-refuse");
      const transitNodes = await startFreshNodes(dir, 2, { idPrefix: "tr", shape: nodeShapeOf(T) });
      const shamirNodes = await startFreshNodes(dir, 1, { idPrefix: "sh", shape: { product } });
      extraNodes.push(...transitNodes, ...shamirNodes);
      const transitAddrs = transitNodes.map((n) => n.apiAddr);
      const shamirAddr = shamirNodes[0]!.apiAddr;
      expect((await sealStatus(new VaultClient({ addr: transitAddrs[0]! }))).type).toBe("transit");

      const shamirOntoTransit = await refusal(
        stagedRestore({ mode: "rebuild", nodes: transitAddrs, store: store(), snapshot: backupShamir.key, keys: { kind: "unseal", keys: shared.keys!.unsealKeysB64 } }),
      );
      expect(shamirOntoTransit.message).toMatch(/Shamir seal, but the target nodes use the 'transit' auto-unseal seal/);
      expect(shamirOntoTransit.message).toMatch(/seal migration, which is a separate operation/);

      const transitOntoShamir = await refusal(stagedRestore({ mode: "rebuild", nodes: [shamirAddr], store: store(), snapshot: backupT.key, keys: recoveryKeys() }));
      expect(transitOntoShamir.message).toMatch(/'transit' auto-unseal seal, but the target nodes use a Shamir seal/);

      const mixed = await refusal(stagedRestore({ mode: "rebuild", nodes: [transitAddrs[0]!, shamirAddr], store: store(), snapshot: backupT.key }));
      expect(mixed.message).toMatch(/different seals/);

      for (const err of [shamirOntoTransit, transitOntoShamir, mixed]) {
        expect(err.message).toMatch(/failed at preflight/);
        expect(restoreReportOf(err)!.steps.map((s) => s.step)).not.toContain("download and verify snapshot");
      }
      expect(await rolesOf([...transitAddrs, shamirAddr])).toEqual(["uninitialized", "uninitialized", "uninitialized"]);
      await Promise.all([...transitNodes, ...shamirNodes].map((n) => stopNode(n)));
    });

    it("a target whose transit key cannot open the snapshot's keyring ends with an error naming the seal and each node's state", async () => {
      await createTransitKey(T, "another-key");
      const nodes = await startFreshNodes(tempDir("restore-transit-wrong"), 2, { idPrefix: "wrongkey", shape: nodeShapeOf(T, { transitKeyName: "another-key" }) });
      extraNodes.push(...nodes);
      const err = await stagedRestore({
        mode: "rebuild",
        nodes: nodes.map((n) => n.apiAddr),
        store: store(),
        snapshot: backupT.key,
        keys: recoveryKeys(),
        token: operatorToken,
      }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/transit seal/);
      expect(err!.message).toMatch(/cannot (decrypt|open) the snapshot's keyring/);
      expect(err!.message).toContain("nodes now:");
      expect(err!.message).toContain(`${nodes[1]!.apiAddr}: uninitialized`);
      expect(err!.message).toMatch(/next: .*same transit key|next: .*original cluster's seal key/s);
      expect(leakedSecrets(err!.message + JSON.stringify(restoreReportOf(err)))).toEqual([]);
      await Promise.all(nodes.map((n) => stopNode(n)));
    });

    it("rebuilds the lost cluster into 3 new transit-sealed nodes with vrb restore and the recovery keys, no token: where generate-root is refused (OpenBao's default) it is refused before any node is touched and completes with an operator's token; where it is served (Vault 1.x's default) it completes with a short-lived root token it revokes", async () => {
      await Promise.all(T.nodes.map((n) => wipeNode(n)));
      const fresh = await addNodes(T, 3);
      T.nodes = fresh;
      saveEnvironment(T);
      const addrs = fresh.map((n) => n.apiAddr);
      const args = ["restore", "latest", "--nodes", addrs.join(","), "--recovery-keys-file", recoveryKeysFile, "--cluster", "rst-t", "--prefix", prefix, "--json"];
      const env = cliEnv(shared);
      delete env.VAULT_TOKEN;
      delete env.BAO_TOKEN;

      let r: Awaited<ReturnType<typeof runVrb>>;
      let refusedOutput = "";
      if (!profile.generateRootByDefault) {
        // No token anywhere and generate-root disabled (OpenBao's default): refused before any
        // node is touched, naming what to give (test/integration/restore-restart.test.ts has the rest).
        const refused = await runVrb(args, env);
        refusedOutput = refused.stdout + refused.stderr;
        expect(refused.code, refused.stderr).toBe(2);
        expect(refused.stderr).toMatch(/no token of the original cluster was given and the targets .* do not serve generate-root/);
        expect(refused.stderr).toContain(`${profile.displayName}: ${profile.generateRootSetting}`);
        expect(refused.stderr).toMatch(/failed at preflight/);
        expect(await rolesOf(addrs)).toEqual(["uninitialized", "uninitialized", "uninitialized"]);
        r = await runVrb(args, { ...env, VAULT_TOKEN: operatorToken });
      } else {
        // Generate-root served by default: the recovery keys make a short-lived root token (the
        // reload of node 1 and the full verification need one), revoked before the end.
        r = await runVrb(args, env);
      }
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as RestoreReport;
      expect(report.ok).toBe(true);
      expect(report.snapshot.key).toBe(backupT.key);
      expect(report.seal).toEqual({ type: "transit", recoverySeal: true });
      expect(report.token).toBe(profile.generateRootByDefault ? "generated" : "operator");
      if (profile.generateRootByDefault) expect(report.steps.find((s) => s.step === "revoke generated root token")?.result).toBe("ok");
      expect(report.verification).toBe("full");
      expect(report.autopilot).toEqual({ healthy: true, failureTolerance: 1 });
      expect(report.nodes.map((n) => n.role).sort()).toEqual(["active", "standby", "standby"]);
      expect(report.nodes.every((n) => n.voter)).toBe(true);
      // Auto-unseal: node 1 is reloaded once with the recovery keys; each joined node unseals itself.
      expect(report.steps.filter((s) => /^unseal node/.test(s.step))).toEqual([]);
      expect(report.steps.find((s) => s.step === "reload node 1: unseal with the original recovery keys")?.result).toBe("ok");
      expect(report.steps.filter((s) => /unseals itself \(transit\) and is a standby/.test(s.step) && s.result === "ok")).toHaveLength(2);
      expect(leakedSecrets(refusedOutput + r.stdout + r.stderr)).toEqual([]);

      const client = root(fresh[1]!.apiAddr);
      const voters = await waitForHealthyVoters(client, 3, 60_000);
      expect(
        voters.servers
          .filter((s) => s.voter)
          .map((s) => s.node_id)
          .sort(),
      ).toEqual(fresh.map((n) => n.id).sort());
      await expectAllSecretsEqual(client, "secret", written);
      // A node that restarts comes back by itself and still talks to the others.
      await stopNode(fresh[2]!);
      await startNode(fresh[2]!);
      saveEnvironment(T);
      const again = root(fresh[2]!.apiAddr);
      expect((await waitForHealthyVoters(client, 3, 60_000)).autopilot.healthy).toBe(true);
      expect(await kvGet(again, "secret", "dr-canary")).toEqual({ ok: "yes" });
      await Promise.all([client.close(), again.close()]);
    });

    it("rolls the transit-sealed cluster back in place: the overwritten secret comes back, nothing to unseal", async () => {
      const t = root();
      await kvPut(t, "secret", "rollback/x", { value: "old" });
      const backup = await runBackup({
        policy: policyFor(
          "rst-t",
          T.nodes.map((n) => n.apiAddr),
        ),
        token: T.keys!.rootToken,
        store: s3StoreOn(s3, bucket, prefix),
      });
      await kvPut(t, "secret", "rollback/x", { value: "new" });
      const report = await stagedRestore({
        mode: "in-place",
        nodes: T.nodes.map((n) => n.apiAddr),
        store: store(),
        snapshot: `s3://${bucket}/${backup.key}`,
        keys: recoveryKeys(),
        token: T.keys!.rootToken,
        canaries: ["secret/data/dr-canary"],
      });
      expect(report.ok).toBe(true);
      expect(report.seal?.type).toBe("transit");
      expect(report.verification).toBe("full");
      expect(report.autopilot?.healthy).toBe(true);
      expect(report.canaries).toEqual([{ path: "secret/data/dr-canary", ok: true }]);
      for (const n of T.nodes) {
        const c = root(n.apiAddr);
        expect(await kvGet(c, "secret", "rollback/x")).toEqual({ value: "old" });
        await c.close();
      }
      await t.close();
    });

    it("vrb drill rehearses a transit-sealed snapshot on throwaway nodes given the seal stanza, and tears them down", async () => {
      const sealFile = join(tempDir("restore-transit-seal"), "seal.hcl");
      writeFileSync(sealFile, transitSealStanza(nodeShapeOf(T).transitSeal!), { mode: 0o600 });
      const keysWithToken = join(tempDir("restore-transit-keys2"), "init.json");
      writeFileSync(keysWithToken, JSON.stringify({ recovery_keys_b64: T.keys!.recoveryKeysB64, root_token: T.keys!.rootToken }), { mode: 0o600 });
      const env = cliEnv(shared);
      delete env.VAULT_TOKEN;
      delete env.BAO_TOKEN;
      const r = await runVrb(
        [
          "drill",
          backupT.key,
          "--prefix",
          prefix,
          "--cluster",
          "rst-t",
          "--seal-config",
          sealFile,
          "--recovery-keys-file",
          keysWithToken,
          "--min-secrets",
          String(SECRETS + 1),
          "--json",
        ],
        env,
      );
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as DrillReport;
      expect(report.ok).toBe(true);
      expect(report.restore.seal).toEqual({ type: "transit", recoverySeal: true });
      expect(report.restore.token).toBe("keys-file");
      expect(report.restore.autopilot).toEqual({ healthy: true, failureTolerance: 1 });
      expect(report.inventory.find((m) => m.mount === "secret")?.secrets).toBe(SECRETS + 1);
      expect(report.teardown.stopped).toBe(3);
      expect(existsSync(report.teardown.removed)).toBe(false);
      expect(leakedSecrets(r.stdout + r.stderr)).toEqual([]);
    });
  });
});
