import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, ensureKvV2, kvGet, kvPut, startFreshNodes, stopNode, type LocalNode, type Product } from "../../engine/index.js";
import { createGcsBucket, startGcsServer, stopGcsServer, type LocalGcsServer } from "../../engine/local/gcs-server.js";
import { createGcsClient, gcsEndpoint } from "../../engine/storage/gcs/client.js";
import { PRODUCTS, cliEnv, rootClient, runVrb, sharedEnvOf, tempDir } from "../support/env.js";

// Issue 21: the real `vrb` CLI with a policy whose destination is `type: gcs`, on each product's
// shared cluster, against a real fake-gcs-server: backup, list, verify (an object overwritten with
// damaged bytes exits 3), a rebuild into a fresh node from the bucket, prune and status. The CLI
// runs with no S3 variable set, so nothing can silently go to the S3 server.
let gcs: LocalGcsServer;

beforeAll(async () => {
  gcs = await startGcsServer(tempDir("gcs-cli"));
});

afterAll(async () => {
  if (gcs) await stopGcsServer(gcs);
});

describe.each(PRODUCTS)("vrb on a Cloud Storage destination (real %s + fake-gcs-server)", (product: Product) => {
  const shared = sharedEnvOf(product);
  const run = `${product}-${randomBytes(3).toString("hex")}`;
  const cluster = `gcs-${run}`;
  const bucket = `vrb-${run}`;
  const canary = { path: `gcs-canary-${run}`, value: randomBytes(12).toString("hex") };
  const dir = tempDir("store-gcs");
  const policy = join(dir, "policy.yaml");
  const keysFile = join(dir, "keys.json");
  let targets: LocalNode[] = [];
  const keys: string[] = [];

  /** The CLI's environment: the shared cluster's address and token, and no S3 at all. */
  function gcsEnv(): Record<string, string> {
    const e = cliEnv(shared);
    for (const k of Object.keys(e)) if (k.startsWith("AWS_") || k === "VRB_BUCKET") delete e[k];
    return e;
  }

  const vrb = (args: string[], opts?: { timeoutMs?: number }) => runVrb([...args, "--policy", policy], gcsEnv(), opts);
  const leaked = (text: string) => [shared.keys!.rootToken, ...shared.keys!.unsealKeysB64].filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);
  /** The test's own view of the bucket, on the same server. */
  const objects = () => createGcsClient(gcsEndpoint(gcs.endpoint)).bucket(bucket);
  const exists = async (key: string) => (await objects().file(key).exists())[0];

  beforeAll(async () => {
    await createGcsBucket(gcs, bucket, { versioning: true });
    writeFileSync(
      policy,
      [
        "cluster:",
        `  name: ${cluster}`,
        `  nodes: [${shared.nodes.map((n) => n.apiAddr).join(", ")}]`,
        `destination: { type: gcs, bucket: ${bucket}, prefix: vault/, endpoint: "${gcs.endpoint}" }`,
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

  it("backs up twice into the bucket, lists both as good and verifies the newest", async () => {
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
      expect(await exists(key)).toBe(true);
      expect(await exists(`${key}.manifest.json`)).toBe(true);
    }

    const list = await vrb(["list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    for (const key of keys) expect(list.stdout).toContain(key);
    const text = await vrb(["list"]);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split("\n");
    for (const key of keys) expect(lines.some((l) => l.startsWith("good ") && l.endsWith(` ${key}`))).toBe(true);

    const verify = await vrb(["verify", "latest"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`OK gs://${bucket}/${keys[1]}`);
  });

  it("rebuilds a fresh node from the newest snapshot in the bucket: the canary reads back", async () => {
    targets = await startFreshNodes(tempDir("store-gcs-target"), 1, { idPrefix: `gcs-${product}`, shape: { product } });
    const r = await vrb(["restore", "latest", "--nodes", targets[0]!.apiAddr, "--unseal-keys-file", keysFile, "--json"], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(leaked(r.stdout + r.stderr)).toEqual([]);
    expect((JSON.parse(r.stdout) as { ok: boolean }).ok).toBe(true);
    const restored = new VaultClient({ addr: targets[0]!.apiAddr, token: shared.keys!.rootToken });
    try {
      expect(await kvGet(restored, "secret", canary.path)).toEqual({ value: canary.value });
    } finally {
      await restored.close();
    }
  });

  it("an object overwritten with damaged bytes fails verify with exit 3; prune keeps the newest; status reports the last success", async () => {
    const [older, newest] = keys as [string, string];
    const file = objects().file(older);
    const [body] = await file.download();
    // Same size, one byte changed in the middle: only the SHA-256 can tell.
    body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
    await file.save(body, { resumable: false, validation: false });

    const verify = await vrb(["verify", older]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(3);
    expect(verify.stderr).toContain(older);

    const prune = await vrb(["prune", "--json"]);
    expect(prune.code, prune.stderr).toBe(0);
    const report = JSON.parse(prune.stdout) as { deleted: { key: string }[]; kept: { key: string }[] };
    expect(report.kept.map((k) => k.key)).toEqual([newest]);
    expect(report.deleted.map((k) => k.key)).toEqual([older]);
    expect(await exists(older)).toBe(false);
    expect(await exists(`${older}.manifest.json`)).toBe(false);
    expect(await exists(newest)).toBe(true);

    const status = await vrb(["status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ newestGood: { key: newest } });
    const check = await vrb(["status", "--check"]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});
