import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatusStore } from "../../engine/status/status-store.js";
import { describeProduct, type Product } from "../../engine/vault/product.js";
import { s3CredentialEnv, testPolicy } from "../providers/support.js";
import { PRODUCTS, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";
import { alive, until } from "../support/processes.js";
import { BACKUP_MAIN, PulumiProject, requirePulumiPeers, resourceOf, SNAPSHOT_TYPE, W1 } from "./support.js";

/**
 * A policy `drill` section under the real Pulumi CLI (stacks/backup, manage: snapshotsOnly): the
 * VaultSnapshot's create drills the snapshot it took, as `vrb backup` does, and stores the verdict.
 * On each product: the drill's throwaway node runs the product of the cluster backed up.
 */

beforeAll(() => requirePulumiPeers());

/**
 * A backup stack (manage: snapshotsOnly) whose policy has a drill section, in a prefix of its own,
 * with the shared cluster's keys in a keys file and its token as secret config.
 */
function drillStack(product: Product, tag: string, drill: Record<string, unknown> = {}) {
  const env = sharedEnvOf(product);
  const token = env.keys!.rootToken;
  const keysFile = join(tempDir(tag), "init.json");
  const policy = { ...testPolicy(env, tag), drill: { every: "7d", unsealKeysFile: keysFile, ...drill } };
  const project = new PulumiProject("vault-raft-backup", BACKUP_MAIN, s3CredentialEnv(env));
  const s3 = s3For(env);
  beforeAll(async () => {
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold, root_token: token }), { mode: 0o600 });
    await project.init(
      { "vault-raft-backup:policy": policy, "vault-raft-backup:manage": "snapshotsOnly", "vault-raft-backup:window": W1 },
      { "vault-raft-backup:vaultToken": token },
    );
  });
  afterAll(() => s3.destroy());
  /** The cluster's status record in the stack's prefix. */
  const record = async () => (await new StatusStore(s3StoreOn(s3, env.bucket!, policy.destination.prefix ?? "")).read(env.clusterName)).record;
  return { project, record };
}

describe.each(PRODUCTS)("%s", (product) => {
  describe("VaultSnapshot with a policy drill section under the real Pulumi engine", () => {
    const { project, record } = drillStack(product, `pulumi-drill-${product}`);

    it("up takes the snapshot, drills it (due: none passed yet) and records the verdict beside it", async () => {
      await project.ok(["up", "--yes"]);
      const [snap] = resourceOf(await project.exportStack(), SNAPSHOT_TYPE);
      expect(snap!.outputs).toMatchObject({ status: "good", drill: { state: "passed", reason: expect.stringMatching(/^restored into /) } });
      // Into a throwaway node of the product backed up.
      expect((snap!.outputs!.drill as { reason: string }).reason).toContain(`restored into ${describeProduct(product)} `);
      const key = snap!.outputs!.key as string;
      const stored = await record();
      expect(stored!.drills![key]).toMatchObject({ ok: true });
      expect(stored!.operations.drill).toMatchObject({ runs: 1, consecutiveFailures: 0 });
    });
  });

  describe("VaultSnapshot's up killed during its drill, under the real Pulumi engine", () => {
    const workDir = tempDir(`pulumi-drill-killed-work-${product}`);
    const { project, record } = drillStack(product, `pulumi-drill-killed-${product}`, { workDir });

    it("the killed up leaves no process and no throwaway node behind; after `pulumi cancel` the next up takes the snapshot and drills it", async () => {
      // The CLI SIGKILLed while the drill restores into its throwaway node; its plugins are not told.
      const killed = await project.killedAt(["up", "--yes"], /drill: starting \d+ fresh node\(s\)[\s\S]*download and verify snapshot \.\.\./);
      expect(killed.started.length, killed.output).toBeGreaterThan(0);
      await until("every process the killed pulumi had started to end", () => (killed.started.some(alive) ? undefined : true), 90_000);
      expect(readdirSync(workDir).filter((d) => d.startsWith("vrb-drill-"))).toEqual([]);
      // The drill was stopped, not failed: no verdict on the snapshot the killed up stored.
      const before = await record();
      expect(before?.operations.backup).toMatchObject({ lastAttemptOk: true });
      expect(before?.drills ?? {}).toEqual({});

      expect((await project.run(["up", "--yes"])).output).toMatch(/currently locked.*pulumi cancel/s);
      await project.ok(["cancel", "--yes"]);
      const r = await project.ok(["up", "--yes"]);
      expect(r.output).toMatch(/interrupted while creating/);
      const [snap] = resourceOf(await project.exportStack(), SNAPSHOT_TYPE);
      expect(snap!.outputs).toMatchObject({ status: "good", drill: { state: "passed" } });
    });
  });
});
