import { afterAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Product } from "../../engine/index.js";
import { loadPolicyFile } from "../../engine/policy.js";
import { loadEnvironment } from "../../devenv/environment.js";
import { PRODUCTS, runVrb, tempDir } from "../support/env.js";

const MiB = 1024 * 1024;

/** `vrb local env` output as variables, as `eval "$(vrb local env)"` would set them. */
function parseExports(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const m of text.matchAll(/^export ([A-Z0-9_]+)='((?:[^']|'\\'')*)'$/gm)) vars[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  return vars;
}

/** One shape per product: OpenBao plain HTTP, HashiCorp Vault with TLS (the policy then names the CA). */
const SHAPES: Record<Product, string[]> = { openbao: [], vault: ["--tls"] };

describe.each(PRODUCTS)("vrb local up --fill and the policy file (%s)", (product) => {
  const dir = join(tempDir(`local-fill-${product}`), "env");
  afterAll(async () => {
    if (existsSync(dir)) await runVrb(["local", "down", "--dir", dir]);
  });

  it("fills about the asked size, writes a policy without secrets, and vrb backup --policy works with vrb local env", async () => {
    const up = await runVrb(["local", "up", "--product", product, "--nodes", "1", "--fill", "20MiB", ...SHAPES[product], "--dir", dir], {}, { timeoutMs: 170_000 });
    expect(up.code, up.stderr).toBe(0);
    const policyPath = join(dir, "policy.yaml");
    expect(up.stdout).toContain(`policy file: ${policyPath}`);
    expect(up.stdout).toContain(`vrb backup --policy ${policyPath}`);
    expect(up.stderr).toMatch(/fill: .* of 20\.0 MiB \(.*\/s\)/);
    expect(up.stderr).toMatch(/filled: 20\.0 MiB stored .* in \d+ secrets under fill\//);

    // The file validates against the schema and names the environment; no secret is in it.
    const state = loadEnvironment(dir)!;
    const policy = loadPolicyFile(policyPath);
    expect(policy.cluster.nodes).toEqual(state.nodes.map((n) => n.apiAddr));
    expect(policy.cluster.caCert).toBe(state.tls?.caCertPath);
    expect(policy.destination).toMatchObject({ bucket: state.bucket, endpoint: state.s3!.endpoint, region: state.s3!.region, forcePathStyle: true });
    expect(policy.verify?.canaries).toEqual(["fill/data/blob-0"]);
    const text = readFileSync(policyPath, "utf8");
    // The environment is not in the default folder: the hints name it, so they work when pasted.
    expect(up.stdout).toContain(`eval "$(vrb local env --dir ${dir})"`);
    expect(text).toContain(`eval "$(vrb local env --dir ${dir})"`);
    expect(text).toContain(`'vrb local down --dir ${dir}' stops the environment`);
    for (const secret of [state.keys!.rootToken, state.s3!.secretAccessKey, ...state.keys!.unsealKeysB64]) {
      expect(text).not.toContain(secret);
      expect(up.stdout + up.stderr).not.toContain(secret);
    }

    const env = await runVrb(["local", "env", "--dir", dir]);
    expect(env.code, env.stderr).toBe(0);
    const backup = await runVrb(["backup", "--policy", policyPath, "--json"], parseExports(env.stdout));
    expect(backup.code, backup.stderr).toBe(0);
    const report = JSON.parse(backup.stdout) as { ok: boolean; bytes: number; vault: { product: string } };
    expect(report.ok).toBe(true);
    expect(report.vault.product).toBe(product);
    // About the asked size: not less than 0.8x, and not wildly more.
    expect(report.bytes).toBeGreaterThanOrEqual(0.8 * 20 * MiB);
    expect(report.bytes).toBeLessThan(1.5 * 20 * MiB);

    if (product === "openbao") {
      // The restore side, once: a drill from the same policy reads the fill canary back.
      const keys = join(dir, "..", "keys.txt");
      writeFileSync(keys, state.keys!.unsealKeysB64.join("\n") + "\n", { mode: 0o600 });
      const drill = await runVrb(["drill", "--policy", policyPath, "--unseal-keys-file", keys], parseExports(env.stdout));
      expect(drill.code, drill.stderr).toBe(0);
      expect(drill.stdout).toContain("canary fill/data/blob-0: readable");
    }

    const down = await runVrb(["local", "down", "--dir", dir]);
    expect(down.code, down.stderr).toBe(0);
    expect(existsSync(dir)).toBe(false);
  });
});

describe("vrb local up --fill: bad values", () => {
  it.each([["20XB"], ["0"], ["lots"], ["-5MiB"]])("--fill %s exits 2 naming --fill and the accepted forms, before anything starts", async (value) => {
    const dir = join(tempDir("local-fill-bad"), "env");
    const r = await runVrb(["local", "up", "--nodes", "1", "--fill", value, "--dir", dir]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`--fill '${value}'`);
    expect(r.stderr).toMatch(/KiB, MiB or GiB.*250MiB/);
    expect(r.stderr).not.toMatch(/starting/);
    expect(existsSync(dir)).toBe(false);
  });

  it("--fill with --no-init exits 2 before anything starts", async () => {
    const dir = join(tempDir("local-fill-noinit"), "env");
    const r = await runVrb(["local", "up", "--nodes", "1", "--no-init", "--fill", "1MiB", "--dir", dir]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("--fill needs an initialised cluster");
    expect(existsSync(dir)).toBe(false);
  });
});
