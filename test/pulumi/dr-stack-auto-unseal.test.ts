import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup, type RestoreReport } from "../../engine/index.js";
import { localDown, localUp, localVaultClient, startLocalNode, stopLocalNode, type LocalEnvironment } from "../../devenv/environment.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { productProfile } from "../../engine/vault/product.js";
import { packageRoot } from "../../engine/package-info.js";
import { s3CredentialEnv } from "../providers/support.js";
import { policyStoreOn, PRODUCTS, sharedEnvOf, s3For, tempDir, vrbBin } from "../support/env.js";
import { policyInSharedBucket } from "../support/restore-fixtures.js";
import { plainTextLeaks, PulumiProject, requirePulumiPeers, resourceOf } from "./support.js";

/**
 * The DR program (stacks/dr, compiled) under the real Pulumi CLI on the shape most production
 * clusters have: TLS with a private CA (the policy's caCert), a transit auto-unseal seal, the
 * product's default listener, and no token of the lost cluster (it went with it). The stack is
 * given the recovery keys and `restartCommand`, which restarts node 1 once the snapshot is applied
 * so that it loads the restored keys by itself. Where the listener serves generate-root (Vault),
 * the recovery keys also make a short-lived token for the full verification; where it does not
 * (OpenBao), the restore completes with token-free checks and exports what it could not verify.
 */
const RESTORE_TYPE = "pulumi-nodejs:dynamic/vault-raft-backup:StagedRestore";

beforeAll(() => requirePulumiPeers());

describe.each(PRODUCTS)("DR program on TLS + transit auto-unseal, no token, restartCommand, under the real Pulumi engine: %s", (product) => {
  const profile = productProfile(product);
  const shared = sharedEnvOf(product);
  const prefix = `pulumi-dr-auto-${product}-${Date.now().toString(36)}/`;
  const s3 = s3For(shared);
  let cluster: LocalEnvironment;
  let project: PulumiProject;
  let secrets: string[];

  beforeAll(async () => {
    cluster = await localUp({ product, dir: tempDir(`pulumi-dr-auto-${product}`), nodes: 3, s3: false, clusterName: "pdra", seal: "transit", tls: true });
    const root = localVaultClient(cluster, { token: cluster.keys!.rootToken });
    await ensureKvV2(root, "secret");
    await kvPut(root, "secret", "dr-canary", { ok: "yes" });
    await kvPut(root, "secret", "app/db", { password: "before-the-disaster" });
    await root.close();
    const nodes = cluster.nodes.map((n) => n.apiAddr);
    const policy = { ...policyInSharedBucket(shared, prefix, "pdra", nodes), verify: { canaries: ["secret/data/dr-canary"] } };
    policy.cluster.caCert = cluster.tls!.caCertPath;
    await runBackup({ policy, token: cluster.keys!.rootToken, store: policyStoreOn(s3, policy) });
    // The disaster: every node loses its data and comes back empty and uninitialised, with its
    // configuration (listener, certificate, seal stanza) as it was.
    for (const n of cluster.nodes) await stopLocalNode(cluster, n.id, { wipe: true });
    for (const n of cluster.nodes) await startLocalNode(cluster, n.id);

    // What `ssh {host} sudo systemctl restart openbao` does for a node of this machine.
    const vrb = `${process.execPath} ${vrbBin()}`;
    const restartCommand = `${vrb} local stop-node {node} --dir ${cluster.dir} && ${vrb} local start-node {node} --dir ${cluster.dir}`;
    project = new PulumiProject("vault-raft-backup-dr", join(packageRoot(), "dist", "stacks", "dr", "index.js"), s3CredentialEnv(shared));
    secrets = [cluster.keys!.rootToken, ...cluster.keys!.recoveryKeysB64!, cluster.transitSeal!.token];
    await project.init(
      {
        "vault-raft-backup:policy": {
          cluster: policy.cluster,
          destination: { bucket: shared.bucket, prefix, endpoint: shared.s3!.endpoint, region: shared.s3!.region, forcePathStyle: true },
          verify: policy.verify,
        },
        "vault-raft-backup-dr:confirm": "pdra",
        "vault-raft-backup-dr:restartCommand": restartCommand,
      },
      // The init JSON as `operator init -format=json` writes it for an auto-unseal cluster, without its root token.
      {
        "vault-raft-backup-dr:recoveryKeys": JSON.stringify({
          unseal_keys_b64: [],
          recovery_keys_b64: cluster.keys!.recoveryKeysB64,
          recovery_keys_threshold: cluster.keys!.threshold,
        }),
      },
    );
  });
  afterAll(async () => {
    s3.destroy();
    if (cluster) await localDown(cluster.dir);
  });

  it("up rebuilds the cluster: node 1 restarted instead of sealed with a token, the others join and unseal themselves, the data is back over TLS", async () => {
    const r = await project.ok(["up", "--yes"], { timeoutMs: 240_000 });
    expect(r.output).toMatch(/restart node 1: /);
    const out = await project.outputs();
    expect(out).toMatchObject({ cluster: "pdra", ok: true });
    expect(String(out.snapshotKey)).toMatch(new RegExp(`^${prefix}pdra/`));
    const [restore] = resourceOf(await project.exportStack(), RESTORE_TYPE);
    const report = restore!.outputs!.report as RestoreReport;
    const step = (name: string) => report.steps.find((s) => s.step.startsWith(name));
    expect(report.seal).toEqual({ type: "transit", recoverySeal: true });
    expect(step("reload node 1: restart its server")?.result).toBe("ok");
    expect(step("wait until node 1 unseals itself (transit) with the restored keys")?.result).toBe("ok");
    expect(report.steps.filter((s) => s.step.startsWith("reload node 1: seal"))).toEqual([]);
    if (profile.generateRootByDefault) {
      // Vault serves generate-root by default: the recovery keys make a short-lived root token for
      // the full verification, revoked before the end.
      expect(out).toMatchObject({ verification: "full", notVerified: [] });
      expect(report.token).toBe("generated");
      expect(step("revoke generated root token")?.result).toBe("ok");
    } else {
      // OpenBao refuses it by default: token-free checks only, and what was not verified is
      // exported with commands that carry the CA, so they work as printed.
      expect(out).toMatchObject({ verification: "health" });
      expect(report.token).toBe("none");
      // Each as "check: command" (the canary first), the command carrying the CA.
      const notVerified = out.notVerified as string[];
      expect(notVerified).toContainEqual(expect.stringMatching(/^canary secret\/data\/dr-canary: VAULT_TOKEN=<a token of the original cluster> bao read /));
      for (const n of notVerified) expect(n).toContain(`-ca-cert=${cluster.tls!.caCertPath}`);
    }
    const roles = await Promise.all(cluster.nodes.map(async (n) => (await nodeHealth(localVaultClient(cluster, { addr: n.apiAddr }))).role));
    expect(roles.sort()).toEqual(["active", "standby", "standby"]);
    const root = localVaultClient(cluster, { addr: cluster.nodes[2]!.apiAddr, token: cluster.keys!.rootToken });
    try {
      expect(await kvGet(root, "secret", "app/db")).toEqual({ password: "before-the-disaster" });
    } finally {
      await root.close();
    }
  }, 300_000);

  it("a second up changes nothing (no second restart, no second restore)", async () => {
    const before = (await project.outputs()).restoredAt;
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/2 unchanged/);
    expect(r.output).not.toMatch(/restart node 1/);
    expect((await project.outputs()).restoredAt).toBe(before);
  });

  it("the recovery keys, the cluster's root token and the seal's token are never in plain text in the state, the backend's files or the CLI output", async () => {
    const exported = await project.exportStack();
    const [restore] = resourceOf(exported, RESTORE_TYPE);
    // The keys were really passed (as a secret), so the searches below are not vacuous.
    expect(JSON.stringify(restore!.inputs)).toContain("4dabf18193072939515e22adb298388d");
    expect(plainTextLeaks(project, exported, secrets)).toEqual([]);
  });
});
