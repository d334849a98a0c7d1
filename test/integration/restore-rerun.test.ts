import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { VaultClient, type RestoreReport } from "../../engine/index.js";
import { waitFor } from "../../engine/wait.js";
import { initialize, nodeHealth, sealStatus, unseal, waitUntilRole } from "../../engine/vault/operations.js";
import { joinRaft } from "../../engine/vault/raft-peers.js";
import { ensureKvV2 } from "../../engine/vault/kv-v2.js";
import { addNodes, localDown, localUp, type LocalEnvironment } from "../../devenv/environment.js";
import { cliEnv, PRODUCTS, runVrb, sharedEnvOf, tempDir } from "../support/env.js";
import { expectAllSecretsEqual, seedVersionedSecrets, type WrittenSecrets } from "../support/restore-fixtures.js";

// Running the same `vrb restore` again after an interruption: it continues from what the nodes
// report instead of refusing "initialised", and refuses (nothing touched) nodes that hold
// something else. A Shamir cluster, the product's default listener, no token anywhere.
describe.each(PRODUCTS)("%s", (product) => {
  const shared = sharedEnvOf(product);
  const run = Date.now().toString(36);
  const prefix = `restore-rerun-${product}-${run}/`;
  const cluster = "rst-rerun";

  let S: LocalEnvironment;
  let keysFile: string;
  let written: WrittenSecrets = new Map();

  const noToken = () => {
    const env = cliEnv(shared);
    delete env.VAULT_TOKEN;
    delete env.BAO_TOKEN;
    return env;
  };
  const restoreArgs = (addrs: string[]) => ["restore", "latest", "--nodes", addrs.join(","), "--unseal-keys-file", keysFile, "--cluster", cluster, "--prefix", prefix, "--json"];
  const rolesOf = (addrs: string[]) => Promise.all(addrs.map(async (addr) => (await nodeHealth(new VaultClient({ addr }))).role));
  const leaked = (text: string) => [S.keys!.rootToken, ...S.keys!.unsealKeysB64].filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);

  beforeAll(async () => {
    S = await localUp({ product, dir: tempDir(`restore-rerun-${product}`), nodes: 1, s3: false, clusterName: cluster });
    const s = new VaultClient({ addr: S.nodes[0]!.apiAddr, token: S.keys!.rootToken });
    await ensureKvV2(s, "secret");
    const paths = Array.from({ length: 40 }, (_, i) => `app-${i % 4}/cred-${String(i).padStart(2, "0")}`);
    written = await seedVersionedSecrets(s, "secret", paths, 2, run);
    await s.close();
    const backup = await runVrb(
      ["backup", "--cluster", cluster, "--prefix", prefix, "--json"],
      cliEnv(shared, { VAULT_TOKEN: S.keys!.rootToken, BAO_TOKEN: S.keys!.rootToken, VRB_NODES: S.nodes[0]!.apiAddr }),
    );
    expect(backup.code, backup.stderr).toBe(0);
    // The original cluster's init JSON without its root token (long revoked): keys only.
    keysFile = join(tempDir("restore-rerun-keys"), "init.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: S.keys!.unsealKeysB64, unseal_threshold: S.keys!.threshold }), { mode: 0o600 });
  });

  afterAll(async () => {
    if (S) await localDown(S.dir);
  });

  it("a rebuild killed once node 1 holds the snapshot is continued by the same command: node 1 unsealed with the original keys, the restore not repeated, the others joined, the data there", async () => {
    const fresh = await addNodes(S, 3);
    const addrs = fresh.map((n) => n.apiAddr);
    // SIGKILL of the CLI as soon as its progress says the snapshot was restored into node 1.
    const killed = await runVrb(restoreArgs(addrs), noToken(), { interrupt: { when: /restore snapshot \(snapshot-force\) \(.*\): ok/, signal: "SIGKILL" } });
    expect(killed.code).not.toBe(0);
    expect(await rolesOf(addrs.slice(1))).toEqual(["uninitialized", "uninitialized"]);
    expect((await rolesOf([addrs[0]!]))[0]).not.toBe("uninitialized");

    const r = await runVrb(restoreArgs(addrs), noToken());
    expect(r.code, r.stderr).toBe(0);
    // What it found and what it will do, per node, before it changes anything.
    expect(r.stderr).toMatch(/node 1 .*: sealed, as a node is after taking the snapshot; unseal it with the original unseal keys/);
    expect(r.stderr).toMatch(/node 2 .*: empty; join it to node 1 and unseal it/);
    const report = JSON.parse(r.stdout) as RestoreReport;
    const step = (name: string) => report.steps.find((s) => s.step === name);
    expect(step("restore snapshot (snapshot-force)")?.result).toBe("skipped");
    expect(step("initialise node 1 with a throwaway keyring")).toBeUndefined();
    expect(step("unseal node 1 with the original keys")?.result).toBe("ok");
    expect(report.steps.filter((s) => /^join node \d to node 1$/.test(s.step) && s.result === "ok")).toHaveLength(2);
    expect(report.nodes.map((n) => n.role).sort()).toEqual(["active", "standby", "standby"]);
    expect(report.raftIndex).toBeGreaterThanOrEqual(report.snapshot.raftIndex);
    const c = new VaultClient({ addr: addrs[2]!, token: S.keys!.rootToken });
    await expectAllSecretsEqual(c, "secret", written);
    await c.close();
    expect(leaked(killed.stdout + killed.stderr + r.stdout + r.stderr)).toEqual([]);

    // Once every node serves the restored cluster there is nothing left to continue: refused as before.
    const again = await runVrb(restoreArgs(addrs), noToken());
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/refusing to rebuild onto nodes that are initialised.*Every target already serves the snapshot's cluster/s);
  });

  it("continues after an operator went on by hand (node 1 unsealed, node 2 joined but still sealed): node 2 is unsealed, node 3 joined", async () => {
    const fresh = await addNodes(S, 3);
    const addrs = fresh.map((n) => n.apiAddr);
    const killed = await runVrb(restoreArgs(addrs), noToken(), { interrupt: { when: /restore snapshot \(snapshot-force\) \(.*\): ok/, signal: "SIGKILL" } });
    expect(killed.code).not.toBe(0);
    const n1 = new VaultClient({ addr: addrs[0]! });
    const n2 = new VaultClient({ addr: addrs[1]! });
    await waitFor(async () => ((await sealStatus(n1)).sealed ? true : undefined), { what: "node 1 to seal itself after the restore", timeoutMs: 60_000 });
    await unseal(n1, S.keys!.unsealKeysB64);
    await waitUntilRole(n1, ["active"], "node 1 to be active", 60_000);
    await joinRaft(n2, addrs[0]!);
    expect(await rolesOf(addrs)).toEqual(["active", "sealed", "uninitialized"]);

    const r = await runVrb(restoreArgs(addrs), noToken());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/node 1 .*: holds the snapshot's cluster at raft index >= \d+; leave it as it is/);
    expect(r.stderr).toMatch(/node 2 .*: sealed, as a node is after joining; unseal it with the original keys/);
    expect(r.stderr).toMatch(/node 3 .*: empty; join it to node 1 and unseal it/);
    const report = JSON.parse(r.stdout) as RestoreReport;
    const step = (name: string) => report.steps.find((s) => s.step === name);
    expect(step("restore snapshot (snapshot-force)")?.result).toBe("skipped");
    expect(step("join node 2 to node 1")?.result).toBe("skipped");
    expect(step("unseal node 2 with the original keys")?.result).toBe("ok");
    expect(step("join node 3 to node 1")?.result).toBe("ok");
    expect(await rolesOf(addrs)).toEqual(["active", "standby", "standby"]);
    const c = new VaultClient({ addr: addrs[1]!, token: S.keys!.rootToken });
    await expectAllSecretsEqual(c, "secret", written);
    await Promise.all([c.close(), n1.close(), n2.close()]);
  });

  it("refuses, with nothing touched, when node 1 holds another cluster (e.g. the throwaway keyring of a run interrupted before the snapshot was applied), naming the wipe command", async () => {
    const fresh = await addNodes(S, 2);
    const addrs = fresh.map((n) => n.apiAddr);
    const n1 = new VaultClient({ addr: addrs[0]! });
    const other = await initialize(n1, { kind: "shamir", shares: 1, threshold: 1 });
    await unseal(n1, other.unsealKeysB64);
    const before = await waitUntilRole(n1, ["active"], "the other cluster's node 1 to be active", 30_000);

    const r = await runVrb(restoreArgs(addrs), noToken());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/failed at preflight/);
    expect(r.stderr).toContain(`Node 1 holds cluster ${before.clusterId}, not the snapshot's`);
    expect(r.stderr).toContain("vrb local stop-node <id> --wipe");
    const report = JSON.parse(r.stdout) as RestoreReport;
    expect(report.steps.map((s) => s.step)).not.toContain("download and verify snapshot");
    const after = await nodeHealth(n1);
    expect([after.role, after.clusterId]).toEqual(["active", before.clusterId]);
    expect(await rolesOf([addrs[1]!])).toEqual(["uninitialized"]);
    await n1.close();
  });

  // Last: it makes a newer backup the cluster's latest.
  it("gives a node 1 with the throwaway keyring's shape (the others empty) time to seal itself, as a rebuild's node 1 does once it has applied the snapshot; one that does not is refused, nothing touched", async () => {
    const fresh = await addNodes(S, 2);
    const addrs = fresh.map((n) => n.apiAddr);
    const n1 = new VaultClient({ addr: addrs[0]! });
    // What an interrupted rebuild leaves before the snapshot is applied: as many shares as the keys given, all needed.
    const keys = S.keys!.unsealKeysB64.length;
    const throwaway = await initialize(n1, { kind: "shamir", shares: keys, threshold: keys });
    await unseal(n1, throwaway.unsealKeysB64);
    const before = await waitUntilRole(n1, ["active"], "the throwaway-shaped node 1 to be active", 30_000);

    const started = Date.now();
    const r = await runVrb([...restoreArgs(addrs), "--step-timeout", "6"], noToken());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/wait until node 1 settles \(it may still be applying the interrupted run's snapshot\)/);
    expect(r.stderr).toMatch(
      /node 1 did not seal itself within 3 s: it holds the throwaway keyring of a run stopped before the snapshot was applied, or is still applying a large one/,
    );
    expect(r.stderr).toContain(`Node 1 holds cluster ${before.clusterId}, not the snapshot's`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    const after = await nodeHealth(n1);
    expect([after.role, after.clusterId]).toEqual(["active", before.clusterId]);
    expect(await rolesOf([addrs[1]!])).toEqual(["uninitialized"]);
    await n1.close();
  });

  it("refuses when node 1 holds an older raft index of the same cluster than the snapshot asked for (exit 2), naming the wipe command", async () => {
    const fresh = await addNodes(S, 2);
    const addrs = fresh.map((n) => n.apiAddr);
    // Node 1 gets the current latest snapshot, then the source moves on and is backed up again.
    const killed = await runVrb(restoreArgs(addrs), noToken(), { interrupt: { when: /restore snapshot \(snapshot-force\) \(.*\): ok/, signal: "SIGKILL" } });
    expect(killed.code).not.toBe(0);
    const s = new VaultClient({ addr: S.nodes[0]!.apiAddr, token: S.keys!.rootToken });
    await seedVersionedSecrets(
      s,
      "secret",
      Array.from({ length: 60 }, (_, i) => `later/cred-${i}`),
      1,
      run,
    );
    await s.close();
    const backup = await runVrb(
      ["backup", "--cluster", cluster, "--prefix", prefix, "--json"],
      cliEnv(shared, { VAULT_TOKEN: S.keys!.rootToken, BAO_TOKEN: S.keys!.rootToken, VRB_NODES: S.nodes[0]!.apiAddr }),
    );
    expect(backup.code, backup.stderr).toBe(0);

    const r = await runVrb(restoreArgs(addrs), noToken());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/node 1 .* was sealed and is now open, but holds raft index \d+, older than the snapshot's \d+/);
    expect(r.stderr).toContain("vrb local stop-node <id> --wipe");
    const report = JSON.parse(r.stdout) as RestoreReport;
    expect(report.steps.map((x) => x.step)).not.toContain("join node 2 to node 1");
    expect(await rolesOf([addrs[1]!])).toEqual(["uninitialized"]);
  });
});
