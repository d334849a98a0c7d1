import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Product } from "../../engine/index.js";
import { PRODUCTS, cliEnv, rootClient, runVrb, sharedEnvOf } from "../support/env.js";

// Issue 26 point 9: a 403 from Vault is a configuration error: exit 2 at once (no retry, no
// backoff), one clean line naming the path and the capability, never Vault's multi-line text.
describe.each(PRODUCTS)("a token its policy does not allow is a configuration error (real %s + S3)", (product: Product) => {
  const env = sharedEnvOf(product);
  const run = `${product}-${Date.now().toString(36)}`;
  const root = rootClient(env);
  const tokens: Record<string, string> = {};

  /** A token whose only policy is `hcl`; never printed. */
  async function tokenWith(name: string, hcl: string): Promise<string> {
    await root.put(`sys/policies/acl/${name}-${run}`, { policy: hcl });
    const made = await root.post<{ auth: { client_token: string } }>("auth/token/create", { policies: [`${name}-${run}`], ttl: "10m", no_default_policy: true });
    return made.body.auth.client_token;
  }

  beforeAll(async () => {
    // Everything a backup reads except the snapshot itself.
    tokens.noSnapshot = await tokenWith(
      "vrb-nosnap",
      'path "sys/storage/raft/configuration" { capabilities = ["read"] }\npath "sys/storage/raft/autopilot/state" { capabilities = ["read"] }',
    );
    // Not even the raft configuration (the preflight's first authenticated read).
    tokens.noConfig = await tokenWith("vrb-noconf", 'path "sys/mounts" { capabilities = ["read"] }');
  });

  afterAll(async () => {
    await root.close();
  });

  const backup = (token: string, json = false) =>
    runVrb(["backup", "--cluster", `perm-${run}`, "--prefix", `perm-${run}/`, ...(json ? ["--json"] : [])], { ...cliEnv(env), VAULT_TOKEN: token });

  const expectOneCleanLine = (stderr: string, line: string) => {
    const hits = stderr.split("\n").filter((l) => l.includes(line));
    expect(hits.length, stderr).toBe(1);
    // Not retried, not Vault's raw multi-line answer.
    expect(stderr).not.toMatch(/retrying|attempt \d+\/\d+/);
    expect(stderr).not.toMatch(/error occurred|\t\*/);
    expect(stderr).not.toContain(tokens.noSnapshot!);
    expect(stderr).not.toContain(tokens.noConfig!);
  };

  it("no 'read' on sys/storage/raft/snapshot: exit 2 at once, naming the path and the capability", async () => {
    const r = await backup(tokens.noSnapshot!);
    expect(r.code, r.stderr).toBe(2);
    expectOneCleanLine(r.stderr, "permission denied: the token may not read sys/storage/raft/snapshot (needs 'read' on that path; see docs/auth.md)");
  });

  it("no 'read' on sys/storage/raft/configuration: exit 2 in preflight, and the JSON report says ConfigError", async () => {
    const r = await backup(tokens.noConfig!, true);
    expect(r.code, r.stderr).toBe(2);
    expectOneCleanLine(r.stderr, "permission denied: the token may not read sys/storage/raft/configuration (needs 'read' on that path; see docs/auth.md)");
    const report = JSON.parse(r.stdout) as { ok: boolean; exitCode: number; error: { kind: string; message: string } };
    expect(report).toMatchObject({ ok: false, exitCode: 2, error: { kind: "ConfigError" } });
    expect(report.error.message).not.toContain("\n");
  });
});
