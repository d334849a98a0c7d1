import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, type RestoreReport } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeShapeOf } from "../../devenv/environment.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { PRODUCTS, rootClient, runVrb, sharedEnvOf, tempDir } from "../support/env.js";

// The real `vrb` CLI with a policy whose destination is a directory (`type: file`), on each
// product's shared cluster: backup, list, verify, status, a rebuild into fresh nodes from the
// directory, prune, and a damaged snapshot file that verify refuses with exit 3. No S3 server is
// named anywhere: the CLI runs without any S3 setting.
describe.each(PRODUCTS)("%s: the vrb CLI on a directory destination", (product) => {
  const env = sharedEnvOf(product);
  const run = `${product}-${Date.now().toString(36)}`;
  const cluster = `file-${run}`;
  const dir = tempDir("file-destination");
  const policyPath = join(tempDir("file-policy"), "policy.yaml");
  const client = rootClient(env);
  const keys: string[] = [];
  const fresh: LocalNode[] = [];

  /** Only what the CLI needs for Vault: no S3 endpoint, bucket or credentials. */
  const cliEnv = (): Record<string, string> => ({ VAULT_TOKEN: env.keys!.rootToken, ...(env.tls ? { VAULT_CACERT: env.tls.caCertPath } : {}) });
  const vrb = (...args: string[]) => runVrb([...args, "--policy", policyPath], cliEnv(), { timeoutMs: 240_000 });
  const fileOf = (key: string) => join(dir, ...key.split("/"));
  const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

  beforeAll(async () => {
    writeFileSync(
      policyPath,
      ["cluster:", `  name: ${cluster}`, `  nodes: [${env.nodes.map((n) => n.apiAddr).join(", ")}]`, `destination: { type: file, path: ${dir}, prefix: vault/ }`, ""].join("\n"),
    );
    await ensureKvV2(client, "file-it");
    await kvPut(client, "file-it", `canary-${run}`, { run, stage: "first" });
  });

  afterAll(async () => {
    await Promise.all(fresh.map((n) => stopNode(n)));
    await client.close();
  });

  it("backs up twice into the directory: each snapshot and manifest is a file, and no temporary file is left", async () => {
    for (const stage of ["first", "second"]) {
      await kvPut(client, "file-it", `canary-${run}`, { run, stage });
      const r = await vrb("backup", "--json");
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { key: string; bytes: number; sha256: string };
      expect(report.key.startsWith(`vault/${cluster}/`)).toBe(true);
      // The stored file is the snapshot the report describes.
      const stored = readFileSync(fileOf(report.key));
      expect(stored.length).toBe(report.bytes);
      expect(sha256(stored)).toBe(report.sha256);
      keys.push(report.key);
    }
    const leftovers = (function walk(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.startsWith(".") ? [join(d, e.name)] : []));
    })(dir);
    expect(leftovers).toEqual([]);
  });

  it("lists both snapshots as good with no lock, and verifies the newest by 'latest' and by its file:// URL", async () => {
    const list = await vrb("list", "--json");
    expect(list.code, list.stderr).toBe(0);
    const rows = (JSON.parse(list.stdout) as { snapshots: { key: string; status: string }[] }).snapshots;
    expect(rows.filter((r) => keys.includes(r.key)).map((r) => r.status)).toEqual(["good", "good"]);
    const text = await vrb("list");
    expect(text.stdout).toContain("no lock (this destination cannot lock objects)");

    const verify = await vrb("verify", "latest");
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout + verify.stderr).toContain(keys[1]!);
    const byUrl = await vrb("verify", `file://${dir}/${keys[1]!}`);
    expect(byUrl.code, byUrl.stderr).toBe(0);
  });

  it("status reads the run records from the directory: the last backup succeeded", async () => {
    const check = await vrb("status", "--check");
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const json = await vrb("status", "--json");
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ newestGood: { key: keys[1] } });
  });

  it("restores the newest snapshot from the directory into 3 fresh nodes: the canary written before it is back", async () => {
    fresh.push(...(await startFreshNodes(tempDir("file-restore-nodes"), 3, { idPrefix: `file-${product}`, shape: nodeShapeOf(env) })));
    const keysFile = join(tempDir("file-keys"), "keys.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold }), { mode: 0o600 });
    const r = await vrb("restore", "latest", "--nodes", fresh.map((n) => n.apiAddr).join(","), "--unseal-keys-file", keysFile, "--json");
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as RestoreReport;
    expect(report.ok).toBe(true);
    expect(report.snapshot.key).toBe(keys[1]);
    const restored = new VaultClient({ addr: fresh[1]!.apiAddr, token: env.keys!.rootToken });
    try {
      expect(await kvGet(restored, "file-it", `canary-${run}`)).toEqual({ run, stage: "second" });
    } finally {
      await restored.close();
    }
  });

  it("prune --keep-last 1 deletes the older snapshot's files, keeps the newest", async () => {
    const r = await vrb("prune", "--keep-last", "1", "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(fileOf(keys[0]!))).toBe(false);
    expect(existsSync(fileOf(keys[1]!))).toBe(true);
    const list = await vrb("list", "--json");
    expect(list.stdout).not.toContain(keys[0]!);
    expect(list.stdout).toContain(keys[1]!);
  });

  it("a damaged snapshot file (one byte changed, same size) makes verify exit 3", async () => {
    const path = fileOf(keys[1]!);
    const data = readFileSync(path);
    const at = Math.floor(data.length / 2);
    data[at] = data[at]! ^ 0xff;
    writeFileSync(path, data);
    expect(statSync(path).size).toBe(data.length);
    const verify = await vrb("verify", "latest");
    expect(verify.code, verify.stdout + verify.stderr).toBe(3);
    expect(verify.stderr).toContain(keys[1]!);
  });
});
