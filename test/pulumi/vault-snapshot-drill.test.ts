import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../engine/package-info.js";
import { StatusStore } from "../../engine/status/status-store.js";
import { s3CredentialEnv, testPolicy } from "../providers/support.js";
import { s3For, s3StoreOn, sharedEnv, tempDir } from "../support/env.js";
import { PulumiProject, requirePulumiPeers, resourceOf } from "./support.js";

/**
 * A policy `drill` section under the real Pulumi CLI (stacks/backup, manage: snapshotsOnly): the
 * VaultSnapshot's create drills the snapshot it took, as `vrb backup` does, and stores the verdict.
 */
const SNAPSHOT_TYPE = "pulumi-nodejs:dynamic/vault-raft-backup:VaultSnapshot";
const BACKUP_MAIN = join(packageRoot(), "dist", "stacks", "backup", "index.js");

beforeAll(() => requirePulumiPeers());

describe("VaultSnapshot with a policy drill section under the real Pulumi engine", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const s3 = s3For(env);
  const keysFile = join(tempDir("pulumi-drill"), "init.json");
  const policy = { ...testPolicy(env, "pulumi-drill"), drill: { every: "7d", unsealKeysFile: keysFile } };
  const project = new PulumiProject("vault-raft-backup", BACKUP_MAIN, s3CredentialEnv(env));

  beforeAll(async () => {
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold, root_token: token }), { mode: 0o600 });
    await project.init(
      { "vault-raft-backup:policy": policy, "vault-raft-backup:manage": "snapshotsOnly", "vault-raft-backup:window": "2024-05-01T06:00:00Z" },
      { "vault-raft-backup:vaultToken": token },
    );
  });
  afterAll(() => s3.destroy());

  it("up takes the snapshot, drills it (due: none passed yet) and records the verdict beside it", async () => {
    await project.ok(["up", "--yes"]);
    const [snap] = resourceOf(await project.exportStack(), SNAPSHOT_TYPE);
    expect(snap!.outputs).toMatchObject({ status: "good", drill: { state: "passed", reason: expect.stringMatching(/^restored into /) } });
    const key = snap!.outputs!.key as string;
    const { record } = await new StatusStore(s3StoreOn(s3, env.bucket!, policy.destination.prefix ?? "")).read(env.clusterName);
    expect(record!.drills![key]).toMatchObject({ ok: true });
    expect(record!.operations.drill).toMatchObject({ runs: 1, consecutiveFailures: 0 });
  });
});
