import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, type Product } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { PRODUCTS, cliEnv, runVrb, s3For, sharedEnvOf, tempDir } from "../support/env.js";
import { binaryFile } from "../support/not-text.js";

// Issue 26, point 10: what the operator reads, through the real CLI.

describe("a wrong policy file through the real CLI", () => {
  it("a binary given as the policy: exit 2, one line naming the file and the byte, none of its bytes printed", async () => {
    const bin = binaryFile(tempDir("msg-cli"));
    const r = await runVrb(["backup", "--policy", bin]);
    expect(r.code, r.stderr).toBe(2);
    // The whole output: it was 6.5 KB of the file's bytes.
    expect(r.stderr).toBe(`vrb: error: ${bin} is not a text (YAML) file: byte 0 is a control character; pass the policy's YAML file with --policy (fields: docs/policy.md)\n`);
    expect(r.stdout).toBe("");

    const json = await runVrb(["list", "--policy", bin, "--json"]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      exitCode: 2,
      error: { kind: "ConfigError", message: expect.stringMatching(/is not a text \(YAML\) file: byte 0/) },
    });
  });

  it("a YAML syntax error: one line that ends with the line, the column and the problem", async () => {
    const path = join(tempDir("msg-cli"), "prod.yaml");
    writeFileSync(path, "cluster:\n  name: prod\n  nodes: [http://127.0.0.1:8200\ndestination: { bucket: b-1 }\n");
    const r = await runVrb(["backup", "--policy", path]);
    expect(r.code, r.stderr).toBe(2);
    // It ended in a dangling "column 1:".
    expect(r.stderr).toBe(`vrb: error: ${path}: not valid YAML at line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]\n`);
  });
});

describe.each(PRODUCTS)("a snapshot that fails its integrity check names another one (real %s + S3)", (product: Product) => {
  const env = sharedEnvOf(product);
  const s3 = s3For(env);
  const bucket = env.bucket!;
  const run = `${product}-${Date.now().toString(36)}`;
  const cluster = `msg-${run}`;
  const flags = ["--cluster", cluster, "--prefix", `msg-${run}/`];
  let older = "";
  let newest = "";
  let keysFile = "";
  let targets: LocalNode[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const r = await runVrb(["backup", ...flags, "--json"], cliEnv(env));
      expect(r.code, r.stderr).toBe(0);
      [older, newest] = [newest, (JSON.parse(r.stdout) as { key: string }).key];
    }
    // The newest object damaged in place, same size: its listing still says good, so it is `latest`;
    // only its bytes tell (what a bit rot or a bad copy of the bucket leaves).
    const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: newest }))).Body!.transformToByteArray());
    const middle = Math.floor(body.length / 2);
    for (let i = middle; i < middle + 64; i++) body[i] = body[i]! ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: newest, Body: body }));
    keysFile = join(tempDir("msg-keys"), "keys.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold }), { mode: 0o600 });
    targets = await startFreshNodes(tempDir("msg-targets"), 1, { idPrefix: "msg-t", shape: { product } });
  }, 240_000);

  afterAll(async () => {
    await Promise.all(targets.map((n) => stopNode(n)));
    s3.destroy();
  });

  const advice = () => `The good snapshot before it is ${older} (taken `;

  it("vrb restore latest: exit 3, next names the good snapshot before the damaged one, not the same command; the target is untouched", async () => {
    const r = await runVrb(["restore", "latest", "--nodes", targets[0]!.apiAddr, "--unseal-keys-file", keysFile, ...flags], cliEnv(env));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`next: nothing was changed on any node. The snapshot s3://${bucket}/${newest} fails its integrity check and will fail it again: do not retry it.`);
    expect(r.stderr).toContain(advice());
    expect(r.stderr).toContain(
      `run the same command with ${older} as the snapshot. vrb list --cluster ${cluster} (with the --policy or --bucket of s3://${bucket}/msg-${run}/) lists them all`,
    );
    expect(r.stderr).not.toContain("run the same command again");
    const c = new VaultClient({ addr: targets[0]!.apiAddr });
    try {
      expect((await nodeHealth(c)).role).toBe("uninitialized");
    } finally {
      await c.close();
    }
  });

  it("vrb drill latest: exit 3 with the same advice, and no 'nodes now' of throwaway nodes that are gone; the named snapshot drills fine", async () => {
    const r = await runVrb(["drill", "latest", "--nodes", "1", "--unseal-keys-file", keysFile, ...flags], cliEnv(env));
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(advice());
    expect(r.stderr).toContain(`run the same command with ${older} as the snapshot`);
    expect(r.stderr).not.toContain("nodes now");
    expect(r.stderr).toMatch(/the throwaway cluster is gone: 1 node\(s\) stopped, \S+ removed/);

    // The advice, followed.
    const again = await runVrb(["drill", older, "--nodes", "1", "--unseal-keys-file", keysFile, ...flags], cliEnv(env));
    expect(again.code, again.stderr).toBe(0);
  });
});
