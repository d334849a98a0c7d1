import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup, runDrill, SnapshotStore, type BackupReport } from "../../engine/index.js";
import { type LocalEnvironment } from "../../devenv/environment.js";
import { productVersion } from "../../engine/throwaway/binaries.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { cliEnv, PRODUCTS, rootClient, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir } from "../support/env.js";
import { policyInSharedBucket } from "../support/restore-fixtures.js";

// The throwaway nodes of drill / recover run the product the snapshot's manifest records.
const run = Date.now().toString(36);

async function backupOf(env: LocalEnvironment, s3: S3Client, prefix: string, cluster: string): Promise<{ backup: BackupReport; keysFile: string }> {
  const c = rootClient(env);
  await ensureKvV2(c, `pt-${run}`);
  await kvPut(c, `pt-${run}`, "app/db", { password: `pw-${run}` });
  await c.close();
  const backup = await runBackup({
    policy: policyInSharedBucket(env, prefix, cluster, [env.nodes[0]!.apiAddr]),
    token: env.keys!.rootToken,
    store: s3StoreOn(s3, env.bucket!, prefix),
  });
  const keysFile = join(tempDir("product-keys"), "keys.json");
  writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold }), { mode: 0o600 });
  return { backup, keysFile };
}

describe("a manifest naming HashiCorp Vault, and no vault binary", () => {
  it("vrb drill fails before any node starts, naming the product and 'npx vrb tools install'", async () => {
    const env = sharedEnvOf("openbao");
    const s3 = s3For(env);
    try {
      const prefix = `product-missing-${run}/`;
      const { backup, keysFile } = await backupOf(env, s3, prefix, "pt-missing");
      // The manifest says Vault (as a Vault cluster's backup would): its throwaway nodes need the vault binary.
      const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: env.bucket!, Key: backup.manifestKey }))).Body!.transformToString());
      manifest.vault = { ...manifest.vault, product: "vault", version: "1.21.1" };
      await s3.send(new PutObjectCommand({ Bucket: env.bucket!, Key: backup.manifestKey, Body: JSON.stringify(manifest) }));
      // An empty tools folder: no vault binary, whatever this machine has installed.
      const r = await runVrb(
        ["drill", "--cluster", "pt-missing", "--prefix", prefix, "--unseal-keys-file", keysFile, "--json"],
        cliEnv(env, { VRB_TOOLS_BIN: tempDir("no-tools") }),
      );
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/the snapshot is from HashiCorp Vault 1\.21\.1, and its throwaway nodes need HashiCorp Vault: vault not found at /);
      expect(r.stderr).toContain("npx vrb tools install");
      expect(r.stderr).not.toMatch(/starting \d+ fresh node/);
    } finally {
      s3.destroy();
    }
  });
});

// Needs the shared Vault cluster: runs where the run has one (test/support/global-setup.ts).
describe.runIf(PRODUCTS.includes("vault"))("a HashiCorp Vault snapshot", () => {
  let vault: LocalEnvironment;
  let s3: S3Client;
  let backup: BackupReport;
  let keysFile: string;
  const prefix = `product-it-${run}/`;

  beforeAll(async () => {
    vault = sharedEnvOf("vault");
    s3 = s3For(vault);
    ({ backup, keysFile } = await backupOf(vault, s3, prefix, "pt-vault"));
  });

  afterAll(() => s3?.destroy());

  it("forced into OpenBao throwaway nodes (shape.product): the product is said before any node starts, and OpenBao 2.7.2 loads it", async () => {
    expect(backup.vault.product).toBe("vault");
    expect(keysFile).toBeTruthy();
    const lines: string[] = [];
    const outcome = await runDrill({
      store: new SnapshotStore(s3StoreOn(s3, vault.bucket!, prefix)),
      cluster: "pt-vault",
      nodes: 1,
      keys: { kind: "unseal", keys: vault.keys!.unsealKeysB64 },
      token: vault.keys!.rootToken,
      shape: { product: "openbao" },
      progress: { info: (m) => lines.push(m), warn: (m) => lines.push(m) },
      timeoutsMs: { step: 60_000 },
    }).then(
      (report) => ({ report, error: undefined }),
      (error: unknown) => ({ report: undefined, error: error as Error }),
    );
    expect(lines.join("\n")).toContain(`throwaway nodes: OpenBao ${productVersion("openbao")}`);
    // Seen: OpenBao 2.7.2 loads this (small, Shamir) Vault 1.21.1 snapshot. Where it cannot (openbao#1154), the
    // drill's error starts "this HashiCorp Vault <v> snapshot cannot be restored into OpenBao <v>" (explainUnloadable).
    expect(outcome.error?.message).toBeUndefined();
    expect(outcome.report!.ok).toBe(true);
    expect(outcome.report!.throwaway.product).toBe("openbao");
    expect(outcome.report!.snapshot.product).toBe("vault");
  });
});
