import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { VaultClient, type RestoreReport } from "../../engine/index.js";
import { startFreshNodes, stopNode } from "../../engine/throwaway/nodes.js";
import { productProfile } from "../../engine/vault/product.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { addNodes, loadEnvironment, localDown, localUp, nodeShapeOf, type LocalEnvironment } from "../../devenv/environment.js";
import { cliEnv, PRODUCTS, runVrb, sharedEnvOf, tempDir, vrbBin } from "../support/env.js";

// An auto-unseal (transit) rebuild with no token at all: node 1 loads the restored cluster's keys by
// being restarted (--restart-command), not by being sealed with a token. The restart command is a
// real one: it stops and starts the node's server process through the local environment's CLI.
describe.each(PRODUCTS)("%s", (product) => {
  const profile = productProfile(product);
  const shared = sharedEnvOf(product);
  const run = Date.now().toString(36);
  const prefix = `restore-restart-${product}-${run}/`;
  const cluster = "rst-restart";

  let T: LocalEnvironment;
  let recoveryKeysFile: string;

  /** The CLI's environment with no token anywhere: a lost cluster's tokens are gone with it. */
  const noToken = () => {
    const env = cliEnv(shared);
    delete env.VAULT_TOKEN;
    delete env.BAO_TOKEN;
    return env;
  };
  const vrb = `${process.execPath} ${vrbBin()}`;
  /** What an operator's `ssh {host} sudo systemctl restart openbao` does, for a local node. */
  const restartCommand = () => `${vrb} local stop-node {node} --dir ${T.dir} && ${vrb} local start-node {node} --dir ${T.dir}`;
  const restoreArgs = (addrs: string[], ...extra: string[]) => ["restore", "latest", "--nodes", addrs.join(","), "--cluster", cluster, "--prefix", prefix, "--json", ...extra];
  const rolesOf = (addrs: string[]) => Promise.all(addrs.map(async (addr) => (await nodeHealth(new VaultClient({ addr }))).role));
  const leaked = (text: string) => [T.keys!.rootToken, ...T.keys!.recoveryKeysB64!, T.transitSeal!.token].filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);

  beforeAll(async () => {
    T = await localUp({ product, dir: tempDir(`restore-restart-${product}`), nodes: 1, s3: false, clusterName: cluster, seal: "transit" });
    const t = new VaultClient({ addr: T.nodes[0]!.apiAddr, token: T.keys!.rootToken });
    await ensureKvV2(t, "secret");
    await kvPut(t, "secret", "dr-canary", { ok: run });
    await t.close();
    const backup = await runVrb(
      ["backup", "--cluster", cluster, "--prefix", prefix, "--json"],
      cliEnv(shared, { VAULT_TOKEN: T.keys!.rootToken, BAO_TOKEN: T.keys!.rootToken, VRB_NODES: T.nodes[0]!.apiAddr }),
    );
    expect(backup.code, backup.stderr).toBe(0);
    recoveryKeysFile = join(tempDir("restore-restart-keys"), "init.json");
    writeFileSync(recoveryKeysFile, JSON.stringify({ unseal_keys_b64: [], recovery_keys_b64: T.keys!.recoveryKeysB64, recovery_keys_threshold: T.keys!.threshold }), {
      mode: 0o600,
    });
  });

  afterAll(async () => {
    if (T) await localDown(T.dir);
  });

  it(`without a token and without a way to reload node 1, refuses before any node is touched (exit 2), naming what to give (${profile.displayName})`, async () => {
    const fresh = await addNodes(T, 2);
    const addrs = fresh.map((n) => n.apiAddr);
    // OpenBao's listener refuses generate-root by default, so the recovery keys alone cannot make a
    // token; Vault 1.x serves it, so there only a missing keys file leaves no way.
    const args = profile.generateRootByDefault ? restoreArgs(addrs) : restoreArgs(addrs, "--recovery-keys-file", recoveryKeysFile);
    const r = await runVrb(args, noToken());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/failed at preflight/);
    expect(r.stderr).toContain("--restart-command");
    if (profile.generateRootByDefault) expect(r.stderr).toContain("--recovery-keys-file");
    else {
      expect(r.stderr).toMatch(/VAULT_TOKEN, --token-file/);
      expect(r.stderr).toContain(`${profile.displayName}: ${profile.generateRootSetting}`);
      expect(r.stderr).toContain("--unauthed-generate-root");
    }
    const report = JSON.parse(r.stdout) as RestoreReport;
    expect(report.steps.map((s) => s.step)).not.toContain("download and verify snapshot");
    expect(await rolesOf(addrs)).toEqual(["uninitialized", "uninitialized"]);
    expect(leaked(r.stdout + r.stderr)).toEqual([]);
  });

  it("with --unauthed-generate-root on targets whose listener serves generate-root, the recovery keys make a short-lived root token that reloads node 1 and is revoked", async () => {
    const nodes = await startFreshNodes(T.dir, 2, { idPrefix: `gr-${product}`, shape: { ...nodeShapeOf(T), unauthedGenerateRoot: true } });
    const addrs = nodes.map((n) => n.apiAddr);
    try {
      const r = await runVrb(restoreArgs(addrs, "--recovery-keys-file", recoveryKeysFile, "--unauthed-generate-root"), noToken());
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as RestoreReport;
      expect(report.token).toBe("generated");
      expect(report.verification).toBe("full");
      expect(report.steps.find((s) => s.step === "reload node 1: unseal with the original recovery keys")?.result).toBe("ok");
      expect(report.steps.find((s) => s.step === "revoke generated root token")?.result).toBe("ok");
      expect(await rolesOf(addrs)).toEqual(["active", "standby"]);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
    } finally {
      await Promise.all(nodes.map((n) => stopNode(n)));
    }
  });

  it("a restart command with a placeholder it does not know is refused before anything is read (exit 2), naming the flag and the known placeholders", async () => {
    const fresh = await addNodes(T, 1);
    const r = await runVrb(restoreArgs([fresh[0]!.apiAddr], "--restart-command", "ssh {hostname} sudo systemctl restart openbao"), noToken());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("--restart-command uses unknown placeholder(s) {hostname}; the known ones are {host}");
    expect(await rolesOf([fresh[0]!.apiAddr])).toEqual(["uninitialized"]);
  });

  it("rebuilds with --restart-command and no token: a failing command stops at node 1 with node states and the next command; run again, node 1 is restarted and the others join", async () => {
    const fresh = await addNodes(T, 2);
    const addrs = fresh.map((n) => n.apiAddr);

    const failing = await runVrb(restoreArgs(addrs, "--restart-command", "echo cannot reach {host} for node {index} >&2; exit 3"), noToken());
    expect(failing.code, failing.stderr).toBe(1);
    expect(failing.stderr).toContain(`restart node 1: cannot reach 127.0.0.1 for node 1`);
    expect(failing.stderr).toMatch(/the restart command of restart node 1 .* exited with code 3/);
    expect(failing.stderr).toMatch(/failed at phase 'restored'/);
    expect(failing.stderr).toContain("nodes now:");
    expect(failing.stderr).toContain(`${addrs[1]}: uninitialized`);
    expect(failing.stderr).toMatch(/next: .*run the same command again/i);

    // The same command again, with a command that does restart node 1: it continues from there.
    const r = await runVrb(restoreArgs(addrs, "--restart-command", restartCommand()), noToken());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/holds the snapshot's cluster .*make it load the restored keys/);
    const report = JSON.parse(r.stdout) as RestoreReport;
    const step = (name: string) => report.steps.find((s) => s.step.startsWith(name));
    expect(step("restore snapshot (snapshot-force)")?.result).toBe("skipped");
    expect(step("reload node 1: restart its server")?.result).toBe("ok");
    expect(step("wait until node 1 unseals itself (transit) with the restored keys")?.result).toBe("ok");
    expect(report.steps.filter((s) => s.step.startsWith("reload node 1: seal"))).toEqual([]);
    expect(report.token).toBe("none");
    expect(report.nodes.map((n) => n.role).sort()).toEqual(["active", "standby"]);
    expect(await rolesOf(addrs)).toEqual(["active", "standby"]);
    // The restored data, read through the joined node with the original cluster's root token.
    const c = new VaultClient({ addr: addrs[1]!, token: T.keys!.rootToken });
    expect(await kvGet(c, "secret", "dr-canary")).toEqual({ ok: run });
    await c.close();
    expect(leaked(failing.stdout + failing.stderr + r.stdout + r.stderr)).toEqual([]);
    // The restart command changed the environment's state file (node 1's new pid): keep it for localDown.
    T = loadEnvironment(T.dir)!;
  });
});
