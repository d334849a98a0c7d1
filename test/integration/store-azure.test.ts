import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, ensureKvV2, kvGet, kvPut, startFreshNodes, stopNode, type LocalNode, type Product } from "../../engine/index.js";
import { startAzurite, stopAzurite, type LocalAzurite } from "../../engine/local/azurite.js";
import { PRODUCTS, cliEnv, rootClient, runVrb, sharedEnvOf, tempDir } from "../support/env.js";

// Issue 21: the real `vrb` CLI with a policy whose destination is `type: azure`, on each product's
// shared cluster, against a real Azurite: backup, list, verify (a damaged blob exits 3), a rebuild
// into a fresh node from the container, prune and status. The CLI runs with Azure credentials only:
// no S3 variable is set, so nothing can silently go to the S3 server.
let az: LocalAzurite;
let service: BlobServiceClient;

beforeAll(async () => {
  az = await startAzurite(tempDir("azurite-cli"));
  service = BlobServiceClient.fromConnectionString(az.connectionString);
});

afterAll(async () => {
  if (az) await stopAzurite(az);
});

describe.each(PRODUCTS)("vrb on an Azure Blob destination (real %s + Azurite)", (product: Product) => {
  const shared = sharedEnvOf(product);
  const run = `${product}-${randomBytes(3).toString("hex")}`;
  const cluster = `az-${run}`;
  const container = `vrb-${run}`;
  const canary = { path: `azure-canary-${run}`, value: randomBytes(12).toString("hex") };
  const dir = tempDir("store-azure");
  const policy = join(dir, "policy.yaml");
  const keysFile = join(dir, "keys.json");
  let blobs: ContainerClient;
  let targets: LocalNode[] = [];
  const keys: string[] = [];

  /** The CLI's environment: the shared cluster's address and token, Azure's connection string, and no S3 at all. */
  function azureEnv(): Record<string, string> {
    const e = cliEnv(shared, { AZURE_STORAGE_CONNECTION_STRING: az.connectionString });
    for (const k of Object.keys(e)) if (k.startsWith("AWS_") || k === "VRB_BUCKET") delete e[k];
    return e;
  }

  const vrb = (args: string[], opts?: { timeoutMs?: number }) => runVrb([...args, "--policy", policy], azureEnv(), opts);
  const secretsOfTest = () => [az.accountKey, az.connectionString, shared.keys!.rootToken, ...shared.keys!.unsealKeysB64];
  const leaked = (text: string) =>
    secretsOfTest()
      .filter((s) => text.includes(s))
      .map((s) => `${s.slice(0, 4)}...`);

  beforeAll(async () => {
    blobs = service.getContainerClient(container);
    await blobs.create();
    writeFileSync(
      policy,
      [
        "cluster:",
        `  name: ${cluster}`,
        `  nodes: [${shared.nodes.map((n) => n.apiAddr).join(", ")}]`,
        `destination: { type: azure, accountName: ${az.accountName}, container: ${container}, prefix: vault/, endpoint: "${az.endpoint}" }`,
        "retention: { keepLast: 1 }",
        "",
      ].join("\n"),
    );
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: shared.keys!.unsealKeysB64, unseal_threshold: shared.keys!.threshold }), { mode: 0o600 });
    const root = rootClient(shared);
    try {
      await ensureKvV2(root, "secret");
      await kvPut(root, "secret", canary.path, { value: canary.value });
    } finally {
      await root.close();
    }
  });

  afterAll(async () => {
    await Promise.all(targets.map((n) => stopNode(n)));
  });

  it("backs up twice into the container, lists both as good and verifies the newest", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await vrb(["backup", "--json"]);
      expect(r.code, r.stderr).toBe(0);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
      keys.push((JSON.parse(r.stdout) as { key: string }).key);
      // A new raft index for the second backup's key.
      const root = rootClient(shared);
      await kvPut(root, "secret", `${canary.path}-tick`, { i }).finally(() => root.close());
    }
    expect(keys[1]).not.toBe(keys[0]);
    for (const key of keys) {
      expect(key.startsWith(`vault/${cluster}/`)).toBe(true);
      expect(await blobs.getBlobClient(key).exists()).toBe(true);
      expect(await blobs.getBlobClient(`${key}.manifest.json`).exists()).toBe(true);
    }

    const list = await vrb(["list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as unknown;
    for (const key of keys) expect(JSON.stringify(listed)).toContain(key);
    const text = await vrb(["list"]);
    expect(text.code, text.stderr).toBe(0);
    for (const key of keys) expect(text.stdout.split("\n").find((l) => l.endsWith(key))).toMatch(/^good /);

    const verify = await vrb(["verify", "latest"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`OK azure://${az.accountName}/${container}/${keys[1]}`);
  });

  it("rebuilds a fresh node from the newest snapshot in the container: the canary reads back", async () => {
    targets = await startFreshNodes(tempDir("store-azure-target"), 1, { idPrefix: `az-${product}`, shape: { product } });
    const r = await vrb(["restore", "latest", "--nodes", targets[0]!.apiAddr, "--unseal-keys-file", keysFile, "--json"], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(leaked(r.stdout + r.stderr)).toEqual([]);
    expect((JSON.parse(r.stdout) as { ok: boolean; snapshot?: { key?: string } }).ok).toBe(true);
    const restored = new VaultClient({ addr: targets[0]!.apiAddr, token: shared.keys!.rootToken });
    try {
      expect(await kvGet(restored, "secret", canary.path)).toEqual({ value: canary.value });
    } finally {
      await restored.close();
    }
  });

  it("a blob overwritten with damaged bytes fails verify with exit 3; prune keeps the newest; status reports the last success", async () => {
    const [older, newest] = keys as [string, string];
    const blob = blobs.getBlockBlobClient(older);
    const body = await blob.downloadToBuffer();
    // Same size, one byte changed in the middle: only the SHA-256 can tell.
    body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
    await blob.upload(body, body.length);

    const verify = await vrb(["verify", older]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(3);
    expect(verify.stderr).toContain(older);

    const prune = await vrb(["prune", "--json"]);
    expect(prune.code, prune.stderr).toBe(0);
    const report = JSON.parse(prune.stdout) as { deleted: { key: string }[]; kept: { key: string }[] };
    expect(report.kept.map((k) => k.key)).toEqual([newest]);
    expect(report.deleted.map((k) => k.key)).toEqual([older]);
    expect(await blobs.getBlobClient(older).exists()).toBe(false);
    expect(await blobs.getBlobClient(`${older}.manifest.json`).exists()).toBe(false);
    expect(await blobs.getBlobClient(newest).exists()).toBe(true);

    const status = await vrb(["status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ newestGood: { key: newest } });
    const check = await vrb(["status", "--check"]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});
