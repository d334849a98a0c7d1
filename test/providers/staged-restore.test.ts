import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, scheduleWindow, type BackupPolicyInput } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { cliEnv, rootClient, runVrb, sharedEnv, tempDir } from "../support/env.js";
import { ProviderHost, type Props } from "./host.js";
import { plainOccurrences, runHarness, s3CredentialEnv, testPolicy, type Registered } from "./support.js";

/**
 * StagedRestore, end to end without the Pulumi CLI: a snapshot taken through the VaultSnapshot
 * provider is rebuilt into fresh local nodes through the StagedRestore provider, both run by
 * Pulumi's own dynamic-provider host from their serialized `__provider` text.
 */
describe("StagedRestore dynamic provider", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const unsealKeys = env.keys!.unsealKeysB64;
  const policy: BackupPolicyInput = testPolicy(env, "restore");
  const canaryPath = `providers-dr-canary-${randomBytes(3).toString("hex")}`;
  const canaryValue = randomBytes(12).toString("hex");
  let registered: Registered[];
  let snapHost: ProviderHost;
  let host: ProviderHost;
  let fresh: LocalNode[] = [];
  let snapshotKey: string;
  let inputs: Props;
  let id: string;
  let state: Props;

  beforeAll(async () => {
    const root = rootClient(env);
    await ensureKvV2(root, "secret");
    await kvPut(root, "secret", canaryPath, { value: canaryValue });
    await root.close();
    registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys, window: scheduleWindow("6h").id });
    // Token from the environment this time (the fallback a CI job uses), not from an input.
    snapHost = await ProviderHost.start("VaultSnapshot", { ...s3CredentialEnv(env), VAULT_TOKEN: token });
    host = await ProviderHost.start("StagedRestore", s3CredentialEnv(env));
    fresh = await startFreshNodes(tempDir("providers-dr"), 3, { idPrefix: "dr" });
  });
  afterAll(async () => {
    await snapHost?.stop();
    await host?.stop();
    for (const n of fresh) await stopNode(n);
  });

  const provider = (name: string) => registered.find((r) => r.name === name)!.provider;

  it("takes the snapshot to restore through the VaultSnapshot provider (token from VAULT_TOKEN)", async () => {
    const snapInputs = registered.find((r) => r.name === "snap")!.inputs;
    const checked = await snapHost.check({}, { policy, window: snapInputs.window as string, __provider: provider("snap") });
    expect(checked.failures).toEqual([]);
    const created = await snapHost.create(checked.inputs);
    expect(created.outs.status).toBe("good");
    snapshotKey = created.outs.key as string;
  });

  it("check: the guard refuses a restore without confirm or with another cluster's name", async () => {
    const news = {
      policy,
      snapshot: "latest",
      mode: "rebuild",
      nodes: fresh.map((n) => n.apiAddr),
      unsealKeys,
      // A token of the original cluster (a secret input): the fresh nodes keep OpenBao's default
      // listener, so without one the canaries could not be read (see the tokenless case below).
      token,
      canaries: [`secret/data/${canaryPath}`],
      __provider: provider("restore"),
    };
    const missing = await host.check({}, news);
    expect(missing.failures).toEqual([{ property: "confirm", reason: expect.stringMatching(new RegExp(`must be set to '${env.clusterName}' to restore`)) }]);
    const wrong = await host.check({}, { ...news, confirm: "prod" });
    expect(wrong.failures).toEqual([{ property: "confirm", reason: expect.stringMatching(/is 'prod' but must equal the cluster name/) }]);
    const badKeys = await host.check({}, { ...news, confirm: env.clusterName, unsealKeys: ["not base64!"] });
    expect(badKeys.failures.map((f) => f.property)).toEqual(["unsealKeys"]);
    const { unsealKeys: _unseal, ...withoutUnsealKeys } = news;
    const badRecovery = await host.check({}, { ...withoutUnsealKeys, confirm: env.clusterName, recoveryKeys: "not base64!" });
    expect(badRecovery.failures.map((f) => f.property)).toEqual(["recoveryKeys"]);
    const both = await host.check({}, { ...news, confirm: env.clusterName, recoveryKeys: unsealKeys });
    expect(both.failures).toEqual([{ property: "recoveryKeys", reason: expect.stringMatching(/either unsealKeys .* or recoveryKeys/) }]);
    // Check is preview-safe: it never dials a node (these addresses have nothing listening).
    const offline = await host.check({}, { ...news, confirm: env.clusterName, nodes: ["http://127.0.0.1:9"] });
    expect(offline.failures).toEqual([]);
    const ok = await host.check({}, { ...news, confirm: env.clusterName });
    expect(ok.failures).toEqual([]);
    for (const f of [...missing.failures, ...wrong.failures, ...badKeys.failures]) {
      for (const k of unsealKeys) expect(f.reason.includes(k)).toBe(false);
    }
    inputs = ok.inputs;
  });

  it("create: rebuilds the cluster from latest into fresh nodes and returns the report, without secrets", async () => {
    const created = await host.create(inputs);
    id = created.id;
    state = created.outs;
    expect(state).toMatchObject({ ok: true, cluster: env.clusterName, mode: "rebuild", snapshotRef: "latest", snapshotKey, verification: "full", notVerified: [] });
    expect((state.report as { canaries: { path: string; ok: boolean }[] }).canaries).toEqual([{ path: `secret/data/${canaryPath}`, ok: true }]);
    for (const secret of [token, ...unsealKeys]) {
      expect(plainOccurrences(state, secret)).toEqual([]);
      expect(host.logs.stderr.includes(secret)).toBe(false);
    }
    // Independent proof: every fresh node is unsealed, and the canary reads back with the
    // ORIGINAL cluster's root token (it came with the snapshot).
    for (const n of fresh) {
      const c = new VaultClient({ addr: n.apiAddr });
      const h = await nodeHealth(c);
      await c.close();
      expect(["active", "standby"]).toContain(h.role);
    }
    const restored = new VaultClient({ addr: fresh[0]!.apiAddr, token });
    expect(await kvGet(restored, "secret", canaryPath)).toEqual({ value: canaryValue });
    await restored.close();
    // Recorded in the cluster's status object, as `vrb restore` records it.
    const status = await runVrb(["status", "--json", "--cluster", env.clusterName, "--prefix", (policy.destination as { prefix: string }).prefix], cliEnv(env));
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ operations: { restore: { lastAttemptOk: true, consecutiveFailures: 0 } } });
  });

  it("diff: the same ref changes nothing; a new ref replaces (a new restore) only with the guard", async () => {
    expect(await host.diff(id, state, inputs)).toMatchObject({ changes: "none", replaces: [] });
    const newRef = `s3://${env.bucket}/${snapshotKey}`;
    const d = await host.diff(id, state, { ...inputs, snapshot: newRef });
    expect(d.changes).toBe("some");
    expect(d.replaces).toEqual(["snapshot"]);
    const { confirm: _armed, ...disarmed } = inputs;
    // Disarmed (confirm removed) with the same ref: nothing to restore, check passes.
    expect((await host.check(inputs, disarmed)).failures).toEqual([]);
    // Disarmed with a new ref: refused before any diff or restore can happen.
    const refused = await host.check(inputs, { ...disarmed, snapshot: newRef });
    expect(refused.failures).toEqual([{ property: "confirm", reason: expect.stringMatching(/to restore again/) }]);
  });

  it("delete: forgets the restore and leaves the cluster running", async () => {
    await host.delete(id, state);
    expect(await host.logLine(/left running/)).toMatch(/left running/);
    const c = new VaultClient({ addr: fresh[0]!.apiAddr });
    expect((await nodeHealth(c)).role).toBe("active");
    await c.close();
  });
});
