import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scheduleWindow, statusKeyFor, VaultClient, type BackupPolicyInput, type RestoreReport } from "../../engine/index.js";
import { parseStatusRecord } from "../../engine/status/record.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { nodeShapeOf } from "../../devenv/environment.js";
import { cliEnv, PRODUCTS, rootClient, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";
import { alive, argvOf, childrenOf, until } from "../support/processes.js";
import { ProviderHost, type Props } from "./host.js";
import { runHarness, s3CredentialEnv, testPolicy, type Registered } from "./support.js";

/**
 * StagedRestore's rebuild runs in a Node process of its own under Pulumi's dynamic-provider host.
 * When the host dies mid-restore (Pulumi cancelled, the CI runner killed), that process must stop at
 * its next safe point, say what state each node is in and what to run next, record the run as
 * interrupted, and the same resource created again must continue from there, not start over.
 */
describe.each(PRODUCTS)("%s", (product) => {
  const env = sharedEnvOf(product);
  const token = env.keys!.rootToken;
  const unsealKeys = env.keys!.unsealKeysB64;
  const canaryPath = `providers-restore-process-${randomBytes(3).toString("hex")}`;
  const canaryValue = randomBytes(12).toString("hex");
  const hosts: ProviderHost[] = [];
  let fresh: LocalNode[] = [];

  afterAll(async () => {
    for (const h of hosts) await h.stop();
    for (const n of fresh) await stopNode(n);
  });

  const restoreRecord = async (prefix: string) => {
    const s3 = s3For(env);
    try {
      const stored = await s3StoreOn(s3, env.bucket!, "").readText(statusKeyFor(prefix, env.clusterName));
      return parseStatusRecord(stored!.text)?.operations.restore;
    } finally {
      s3.destroy();
    }
  };

  const roleOf = async (addr: string) => {
    const c = new VaultClient({ addr });
    try {
      return (await nodeHealth(c)).role;
    } finally {
      await c.close();
    }
  };

  // No object lock: this prefix's snapshots are the test's own and go with the bucket.
  const { objectLock: _lock, ...policy }: BackupPolicyInput = testPolicy(env, "restore-process");
  const prefix = (policy.destination as { prefix: string }).prefix;
  let addrs: string[] = [];
  let provider = "";

  beforeAll(async () => {
    const root = rootClient(env);
    await ensureKvV2(root, "secret");
    await kvPut(root, "secret", canaryPath, { value: canaryValue });
    await root.close();
    const backup = await runVrb(["backup", "--prefix", prefix, "--json"], cliEnv(env));
    expect(backup.code, backup.stderr).toBe(0);
    fresh = await startFreshNodes(tempDir(`providers-restore-process-${product}`), 3, { idPrefix: "rp", shape: nodeShapeOf(env) });
    addrs = fresh.map((n) => n.apiAddr);
    const registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys, window: scheduleWindow("6h").id });
    provider = registered.find((r) => r.name === "restore")!.provider;
  });

  /** A new host (as each `pulumi up` starts one) and the checked inputs of the rebuild; `omit` leaves inputs out. */
  const start = async (omit: string[] = [], extra: Props = {}) => {
    const host = await ProviderHost.start("StagedRestore", s3CredentialEnv(env));
    hosts.push(host);
    const news: Props = {
      policy,
      snapshot: "latest",
      mode: "rebuild",
      nodes: addrs,
      unsealKeys,
      token,
      canaries: [`secret/data/${canaryPath}`],
      confirm: env.clusterName,
      __provider: provider,
      ...extra,
    };
    for (const k of omit) delete news[k];
    const checked = await host.check({}, news);
    expect(checked.failures).toEqual([]);
    return { host, inputs: checked.inputs };
  };

  it("a host whose engine is gone ends at its next write instead of spinning in Pulumi's error logging", async () => {
    const { host } = await start();
    host.closeOutput();
    // delete writes one line ("forgetting restore ...") into the closed pipe.
    await host.delete("gone", { __provider: provider }).catch(() => undefined);
    await until("the host to end", () => (alive(host.pid) ? undefined : true), 30_000);
  });

  it("a refusal names this resource's inputs, not the CLI's flags: a Shamir rebuild without unsealKeys, nothing changed", async () => {
    const { host, inputs } = await start(["unsealKeys"]);
    const refused = host.create(inputs);
    await expect(refused).rejects.toThrow(/needs the ORIGINAL cluster's unseal keys .*give the unsealKeys input\. Nothing was changed/);
    await expect(refused).rejects.not.toThrow(/--unseal-keys-file/);
    expect(await Promise.all(addrs.map(roleOf))).toEqual(["uninitialized", "uninitialized", "uninitialized"]);
  });

  it("a program that fills the inputs from its own settings (the DR stack's config) has the refusal name those (settingNames)", async () => {
    const settingNames = { unsealKeys: "the secret config my-dr:unsealKeys", stepTimeout: "" };
    const { host, inputs } = await start(["unsealKeys"], { settingNames });
    await expect(host.create(inputs)).rejects.toThrow(/needs the ORIGINAL cluster's unseal keys .*give the secret config my-dr:unsealKeys\. Nothing was changed/);
    expect(await Promise.all(addrs.map(roleOf))).toEqual(["uninitialized", "uninitialized", "uninitialized"]);
  });

  it("the host killed once node 1 holds the snapshot, then Pulumi's engine gone once node 1 is unsealed: each time the restore's own process stops naming each node's state, the run is recorded as interrupted, and creating the resource again continues the rebuild", async () => {
    const first = await start();
    const created = first.host.create(first.inputs);
    created.catch(() => undefined);
    await first.host.logLine(/restore snapshot \(snapshot-force\).*: ok/, 150_000);
    const [worker] = childrenOf(first.host.pid).filter((pid) => argvOf(pid).some((a) => a.endsWith(join("own-process", "main.js"))));
    expect(worker, `a child of the host running the restore; host stderr:\n${first.host.logs.stderr}`).toBeDefined();
    // The keys and the token went over the IPC channel: never on the child's command line.
    for (const secret of [token, ...unsealKeys]) expect(argvOf(worker!).join(" ")).not.toContain(secret);

    process.kill(first.host.pid, "SIGKILL");
    await expect(created).rejects.toThrow();
    await until("the restore's process to exit", () => (alive(worker!) ? undefined : true), 60_000);
    const log = await first.host.logLine(/failed: restore \(rebuild\) stopped at phase '\w+'/, 10_000);
    expect(log).toMatch(/the process that started this one ended: stopping at the next safe point/);
    // What each node is in, and what to run next, as `vrb restore` says it.
    expect(log).toMatch(/nodes now:\n(?:.*\n){3}next: /);
    // Named as a Pulumi user acts on them: this resource's inputs and `pulumi up`, not `vrb restore`'s flags.
    expect(log).toMatch(/run `pulumi up` again: it continues from there/);
    expect(log).toMatch(/the stepTimeoutMs input sets them explicitly/);
    expect(log).not.toMatch(/--[a-z]+-[a-z-]+|same command/);
    for (const secret of [token, ...unsealKeys]) expect(log.includes(secret)).toBe(false);
    // Node 1 holds the snapshot: the restore is not to be repeated on it.
    expect(await roleOf(addrs[0]!)).not.toBe("uninitialized");

    expect(await restoreRecord(prefix)).toMatchObject({ lastAttemptOk: false, lastError: { kind: "InterruptedError" } });

    // `pulumi up` again: the same resource, a new host, the same inputs. This time Pulumi's engine
    // dies (its reader of the host's output goes away) once node 1 is unsealed: the host lives on,
    // and the restore's process must stop at its next safe point, not crash on the closed pipe.
    const second = await start();
    const resumed = second.host.create(second.inputs);
    resumed.catch(() => undefined);
    await second.host.logLine(/unseal node 1 with the original keys[^\n]*: ok/, 150_000);
    const [secondWorker] = childrenOf(second.host.pid).filter((pid) => argvOf(pid).some((a) => a.endsWith(join("own-process", "main.js"))));
    second.host.closeOutput();
    await expect(resumed).rejects.toThrow();
    if (secondWorker) await until("the second restore's process to exit", () => (alive(secondWorker) ? undefined : true), 60_000);
    // Nobody can reach the host any more: it ends instead of idling on as an orphan.
    await until("the host whose engine is gone to end", () => (alive(second.host.pid) ? undefined : true), 30_000);
    expect(await restoreRecord(prefix)).toMatchObject({
      lastAttemptOk: false,
      lastError: { kind: "InterruptedError", message: expect.stringMatching(/stopped at phase '\w+': interrupted \(the process reading this one's output ended\)/) },
    });

    // And once more: it continues from wherever the second run stopped.
    const third = await start();
    const done = await third.host.create(third.inputs);
    const report = done.outs.report as unknown as RestoreReport;
    expect(done.outs).toMatchObject({ ok: true, mode: "rebuild", verification: "full" });
    const step = (name: string) => report.steps.find((s) => s.step === name);
    expect(step("restore snapshot (snapshot-force)")?.result).toBe("skipped");
    expect(step("initialise node 1 with a throwaway keyring")).toBeUndefined();
    expect(report.nodes.map((n) => n.role).sort()).toEqual(["active", "standby", "standby"]);
    expect(report.canaries).toEqual([{ path: `secret/data/${canaryPath}`, ok: true }]);
    const restored = new VaultClient({ addr: addrs[2]!, token });
    expect(await kvGet(restored, "secret", canaryPath)).toEqual({ value: canaryValue });
    await restored.close();
    expect(await restoreRecord(prefix)).toMatchObject({ lastAttemptOk: true, consecutiveFailures: 0 });
  }, 600_000);
});
