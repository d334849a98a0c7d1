import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VaultClient, runBackup, type Product, type RestoreReport } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { localDown, localUp, type LocalEnvironment } from "../../devenv/environment.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { PRODUCTS, cliEnv, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";
import { policyInSharedBucket } from "../support/restore-fixtures.js";

// Issue 26 point 5: wrong Shamir unseal keys are refused offline, from the snapshot itself, before
// any target node is touched. Source cluster A (3 shares, threshold 2) is backed up; W is a
// throwaway cluster initialised only for its (wrong) keys; the targets are fresh real nodes.
describe.each(PRODUCTS)("Shamir unseal keys proven offline from the snapshot (real %s + S3)", (product: Product) => {
  const shared = sharedEnvOf(product);
  const s3 = s3For(shared);
  const run = `${product}-${Date.now().toString(36)}`;
  const prefix = `keys-offline-${run}/`;
  const cluster = "keys-a";

  let A: LocalEnvironment;
  let W: LocalEnvironment;
  let targets: LocalNode[] = [];
  let secretsOfTest: string[] = [];

  function keysFile(name: string, doc: unknown): string {
    const path = join(tempDir("keys-offline"), name);
    writeFileSync(path, typeof doc === "string" ? doc : JSON.stringify(doc), { mode: 0o600 });
    return path;
  }

  const restoreArgs = (file: string) => [
    "restore",
    "latest",
    "--nodes",
    targets.map((n) => n.apiAddr).join(","),
    "--unseal-keys-file",
    file,
    "--cluster",
    cluster,
    "--prefix",
    prefix,
    "--json",
  ];

  function envNoToken(): Record<string, string> {
    const e = cliEnv(shared);
    delete e.VAULT_TOKEN;
    delete e.BAO_TOKEN;
    return e;
  }

  async function targetRoles(): Promise<string[]> {
    const c = new VaultClient({ addr: targets[0]!.apiAddr });
    try {
      return await Promise.all(targets.map(async (n) => (await nodeHealth(c.forNode(n.apiAddr))).role));
    } finally {
      await c.close();
    }
  }

  const leaked = (text: string) => secretsOfTest.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);

  beforeAll(async () => {
    [A, W] = await Promise.all([
      localUp({ product, dir: tempDir("keys-src"), nodes: 1, s3: false, clusterName: cluster, shares: 3, threshold: 2 }),
      localUp({ product, dir: tempDir("keys-other"), nodes: 1, s3: false, clusterName: "keys-w", shares: 3, threshold: 2 }),
    ]);
    secretsOfTest = [A.keys!.rootToken, ...A.keys!.unsealKeysB64, W.keys!.rootToken, ...W.keys!.unsealKeysB64];
    const a = new VaultClient({ addr: A.nodes[0]!.apiAddr, token: A.keys!.rootToken });
    await ensureKvV2(a, "kv");
    await kvPut(a, "kv", "dr-canary", { ok: run });
    await a.close();
    await runBackup({ policy: policyInSharedBucket(shared, prefix, cluster, [A.nodes[0]!.apiAddr]), token: A.keys!.rootToken, store: s3StoreOn(s3, shared.bucket!, prefix) });
    targets = await startFreshNodes(tempDir("keys-targets"), 2, { idPrefix: "keys-t", shape: { product } });
  }, 240_000);

  afterAll(async () => {
    await Promise.all(targets.map((n) => stopNode(n)));
    if (A) await localDown(A.dir);
    if (W) await localDown(W.dir);
    s3.destroy();
  });

  describe("vrb restore proves the keys before touching a node", () => {
    it("refuses another cluster's keys with exit 2, naming the keys file and the fix; the targets stay uninitialised", async () => {
      expect(await targetRoles()).toEqual(["uninitialized", "uninitialized"]);
      const wrong = keysFile("other-cluster.json", { unseal_keys_b64: W.keys!.unsealKeysB64, unseal_threshold: 2 });
      const r = await runVrb(restoreArgs(wrong), envNoToken());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`keys file ${wrong}: these keys do not open this snapshot's root key; use the unseal keys of the cluster that took it`);
      const report = JSON.parse(r.stdout) as RestoreReport & { error: { message: string; kind: string } };
      expect(report.ok).toBe(false);
      expect(report.error.kind).toBe("ConfigError");
      const steps = report.steps.map((s) => s.step);
      expect(steps).toContain("download and verify snapshot");
      expect(report.steps.find((s) => s.step === "prove the unseal keys against the snapshot")?.result).toBe("failed");
      expect(steps.some((s) => s.startsWith("initialise node 1"))).toBe(false);
      expect(await targetRoles()).toEqual(["uninitialized", "uninitialized"]);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
    });

    it("refuses too few of the right keys with exit 2, saying how many the snapshot's cluster needs", async () => {
      // One key per line: the file says nothing of the threshold; the snapshot's seal configuration does.
      const few = keysFile("one-key.txt", `${A.keys!.unsealKeysB64[1]!}\n`);
      const r = await runVrb(restoreArgs(few), envNoToken());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`keys file ${few} holds 1 unseal key(s), but the snapshot's cluster needs 2`);
      expect(await targetRoles()).toEqual(["uninitialized", "uninitialized"]);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
    });

    it("vrb drill (a restore into throwaway nodes) refuses another cluster's keys the same way, and tears its nodes down", async () => {
      const wrong = keysFile("drill-other.json", { unseal_keys_b64: W.keys!.unsealKeysB64, unseal_threshold: 2 });
      const r = await runVrb(["drill", "--cluster", cluster, "--prefix", prefix, "--unseal-keys-file", wrong, "--json"], envNoToken());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`keys file ${wrong}: these keys do not open this snapshot's root key`);
      // The throwaway nodes (started before the restore) are stopped and their folder is gone.
      const down = /drill: stopped (\d+) node\(s\), removed (\S+)/.exec(r.stderr);
      expect(down, r.stderr).not.toBeNull();
      expect(existsSync(down![2]!)).toBe(false);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
    });

    it("with the right keys (any two of three) the proof passes and the rebuild proceeds to the end", async () => {
      const right = keysFile("source.txt", `${A.keys!.unsealKeysB64[2]!}\n${A.keys!.unsealKeysB64[0]!}\n`);
      const r = await runVrb(restoreArgs(right), { ...envNoToken(), VAULT_TOKEN: A.keys!.rootToken }, { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as RestoreReport;
      const proof = report.steps.find((s) => s.step === "prove the unseal keys against the snapshot");
      expect(proof?.result).toBe("ok");
      expect(proof?.detail).toMatch(/2 key\(s\) open the snapshot's root key and keyring/);
      expect((await targetRoles()).sort()).toEqual(["active", "standby"]);
      const c = new VaultClient({ addr: targets[0]!.apiAddr, token: A.keys!.rootToken });
      expect(await kvGet(c, "kv", "dr-canary")).toEqual({ ok: run });
      await c.close();
      expect(leaked(r.stdout)).toEqual([]);
    }, 300_000);
  });
});
