import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup, VaultClient } from "../../engine/index.js";
import { localDown, localUp, startLocalNode, stopLocalNode, type LocalEnvironment } from "../../devenv/environment.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { packageRoot } from "../../engine/package-info.js";
import { s3CredentialEnv } from "../providers/support.js";
import { policyStoreOn, PRODUCTS, sharedEnvOf, s3For, tempDir } from "../support/env.js";
import { policyInSharedBucket } from "../support/restore-fixtures.js";
import { alive, until } from "../support/processes.js";
import { plainTextLeaks, PulumiProject, requirePulumiPeers, resourceOf } from "./support.js";

/**
 * The DR program (stacks/dr, compiled) under the real Pulumi CLI and engine: a cluster of its own
 * is backed up, its nodes are wiped (what the `reset` block's commands do; the @pulumi/command
 * provider cannot be built here, so the test runs them), and `pulumi up` rebuilds it from the
 * latest snapshot with StagedRestore. The snapshot is encrypted client-side (age); the unseal keys,
 * the token and the age identity come from Pulumi secret config. Run on each product: the same
 * program rebuilds an OpenBao cluster and a HashiCorp Vault cluster.
 */
const RESTORE_TYPE = "pulumi-nodejs:dynamic/vault-raft-backup:StagedRestore";

beforeAll(() => requirePulumiPeers());

describe.each(PRODUCTS)("DR program (stacks/dr) under the real Pulumi engine: %s", (product) => {
  const shared = sharedEnvOf(product);
  const prefix = `pulumi-dr-${product}-${Date.now().toString(36)}/`;
  const s3 = s3For(shared);
  let cluster: LocalEnvironment;
  let project: PulumiProject;
  let secrets: string[];

  beforeAll(async () => {
    cluster = await localUp({ product, dir: tempDir(`pulumi-dr-${product}`), nodes: 3, s3: false, clusterName: "pdr" });
    const root = new VaultClient({ addr: cluster.nodes[0]!.apiAddr, token: cluster.keys!.rootToken });
    await ensureKvV2(root, "secret");
    await kvPut(root, "secret", "dr-canary", { ok: "yes" });
    await kvPut(root, "secret", "app/db", { password: "before-the-disaster" });
    await root.close();
    const identity = await generateX25519Identity();
    const policy = {
      ...policyInSharedBucket(
        shared,
        prefix,
        "pdr",
        cluster.nodes.map((n) => n.apiAddr),
      ),
      verify: { canaries: ["secret/data/dr-canary"] },
      encryption: { age: [await identityToRecipient(identity)] },
    };
    await runBackup({ policy, token: cluster.keys!.rootToken, store: policyStoreOn(s3, policy) });
    // The disaster: every node loses its data and comes back empty and uninitialised.
    for (const n of cluster.nodes) await stopLocalNode(cluster, n.id, { wipe: true });
    for (const n of cluster.nodes) await startLocalNode(cluster, n.id);

    project = new PulumiProject("vault-raft-backup-dr", join(packageRoot(), "dist", "stacks", "dr", "index.js"), s3CredentialEnv(shared));
    secrets = [cluster.keys!.rootToken, ...cluster.keys!.unsealKeysB64, identity];
    await project.init(
      {
        "vault-raft-backup:policy": {
          cluster: policy.cluster,
          destination: { bucket: shared.bucket, prefix, endpoint: shared.s3!.endpoint, region: shared.s3!.region, forcePathStyle: true },
          verify: policy.verify,
        },
        "vault-raft-backup-dr:confirm": "pdr",
        "vault-raft-backup-dr:snapshot": "latest",
      },
      {
        "vault-raft-backup-dr:unsealKeys": JSON.stringify({ unseal_keys_b64: cluster.keys!.unsealKeysB64 }),
        "vault-raft-backup-dr:token": cluster.keys!.rootToken,
        "vault-raft-backup-dr:identity": identity,
      },
    );
  });
  afterAll(async () => {
    s3.destroy();
    if (cluster) await localDown(cluster.dir);
  });

  it("preview plans the restore and touches no node", async () => {
    const r = await project.ok(["preview", "--diff"]);
    expect(r.stdout).toMatch(/\+ pulumi-nodejs:dynamic\/vault-raft-backup:StagedRestore: \(create\)/);
    const health = await fetch(`${cluster.nodes[0]!.apiAddr}/v1/sys/health`);
    expect(health.status).toBe(501); // still not initialised
  });

  it("an up killed mid-restore leaves no process behind; after `pulumi cancel` the next up continues the rebuild: data back, full verification, report exported", async () => {
    // The CLI SIGKILLed once node 1 holds the snapshot; its plugins are not told.
    const killed = await project.killedAt(["up", "--yes"], /restore snapshot \(snapshot-force\)[^\n]*: ok/);
    expect(killed.started.length, killed.output).toBeGreaterThan(0);
    // The provider host and the restore's own process end (the restore at its next safe point):
    // nothing is left running, or spinning, on the machine that ran Pulumi.
    await until("every process the killed pulumi had started to end", () => (killed.started.some(alive) ? undefined : true), 90_000);
    // A self-managed backend keeps the killed update's lock: the next up says how to clear it.
    const locked = await project.run(["up", "--yes"]);
    expect(locked.code).not.toBe(0);
    expect(locked.output).toMatch(/currently locked.*pulumi cancel/s);
    await project.ok(["cancel", "--yes"]);

    const r = await project.ok(["up", "--yes"], { timeoutMs: 240_000 });
    expect(r.output).toMatch(/interrupted while creating/);
    expect(r.stdout).toMatch(/created/);
    const out = await project.outputs();
    expect(out).toMatchObject({ cluster: "pdr", ok: true, verification: "full", resetNodes: 0, filesNodes: 0 });
    expect(String(out.snapshotKey)).toMatch(new RegExp(`^${prefix}pdr/`));
    const root = new VaultClient({ addr: cluster.nodes[1]!.apiAddr, token: cluster.keys!.rootToken });
    try {
      expect(await kvGet(root, "secret", "app/db")).toEqual({ password: "before-the-disaster" });
    } finally {
      await root.close();
    }
    const [restore] = resourceOf(await project.exportStack(), RESTORE_TYPE);
    expect(restore!.outputs).toMatchObject({ ok: true, cluster: "pdr", mode: "rebuild", snapshotRef: "latest" });
    // Continued, not started over: node 1 already held the snapshot.
    const steps = (restore!.outputs!.report as { steps: { step: string; result: string }[] }).steps;
    expect(steps.find((s) => s.step === "restore snapshot (snapshot-force)")?.result).toBe("skipped");
    // The snapshot was age-encrypted: the restore decrypted it with the identity from secret config.
    const manifest = await s3.send(new GetObjectCommand({ Bucket: shared.bucket, Key: `${String(out.snapshotKey)}.manifest.json` }));
    expect(JSON.parse(await manifest.Body!.transformToString())).toMatchObject({ encryption: { format: "age" } });
  }, 600_000);

  it("a second up changes nothing (no second restore)", async () => {
    const before = (await project.outputs()).restoredAt;
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/2 unchanged/);
    expect((await project.outputs()).restoredAt).toBe(before);
  });

  it("the restore's messages name the stack's config keys (StagedRestore settingNames), and no step deadline the stack cannot set", async () => {
    const [restore] = resourceOf(await project.exportStack(), RESTORE_TYPE);
    const names = (restore!.inputs as { settingNames?: Record<string, string> }).settingNames;
    expect(names).toMatchObject({
      unsealKeys: "the secret config vault-raft-backup-dr:unsealKeys",
      restartCommand: "the config vault-raft-backup-dr:restartCommand",
      token: "the secret config vault-raft-backup-dr:token",
      stepTimeout: "",
    });
  });

  it("the unseal keys, the token and the age identity are never in plain text in the state, the backend's files or the CLI output", async () => {
    const exported = await project.exportStack();
    const [restore] = resourceOf(exported, RESTORE_TYPE);
    // They were really passed (as secrets), so the searches below are not vacuous.
    expect(JSON.stringify(restore!.inputs)).toContain("4dabf18193072939515e22adb298388d");
    expect(plainTextLeaks(project, exported, secrets)).toEqual([]);
  });

  it("destroy forgets the restore and leaves the cluster as it is", async () => {
    await project.ok(["destroy", "--yes"]);
    expect(resourceOf(await project.exportStack(), RESTORE_TYPE)).toEqual([]);
    const root = new VaultClient({ addr: cluster.nodes[0]!.apiAddr, token: cluster.keys!.rootToken });
    try {
      expect(await kvGet(root, "secret", "dr-canary")).toEqual({ ok: "yes" });
    } finally {
      await root.close();
    }
  });
});
