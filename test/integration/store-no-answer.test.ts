import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, type Product } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { kvGet } from "../../engine/vault/kv-v2.js";
import { createLockedBucket, localS3Client, startS3Server, stopS3Server, type LocalS3Server } from "../../devenv/s3server.js";
import { PRODUCTS, cliEnv, putCanary, runVrb, sharedEnvOf, tempDir, writeKeysFile } from "../support/env.js";
import { frozen } from "../support/processes.js";

// A store that accepts connections and then says nothing (a hung server or load balancer, a
// firewall that drops packets): its own SeaweedFS, stopped with SIGSTOP. Every command must end and
// say which store did not answer, instead of waiting forever; a restore must name the copy to use.
// The destination's timeoutSeconds is 3 here so that the commands end in seconds (default 60).
let s3: LocalS3Server;

beforeAll(async () => {
  s3 = await startS3Server(tempDir("no-answer-s3"), "seaweedfs");
});

afterAll(async () => {
  if (s3) await stopS3Server(s3);
});

describe.each(PRODUCTS)("a store that stops answering (real %s, SeaweedFS stopped with SIGSTOP)", (product: Product) => {
  const shared = sharedEnvOf(product);
  const run = `${product}-${randomBytes(3).toString("hex")}`;
  const cluster = `hung-${run}`;
  const bucket = `hung-${run}`;
  const dir = tempDir("no-answer");
  const offsite = tempDir("no-answer-offsite");
  const policy = join(dir, "policy.yaml");
  const keysFile = join(dir, "keys.json");
  const canary = { path: `hung-canary-${run}`, value: randomBytes(12).toString("hex") };
  const targets: LocalNode[] = [];
  const env = () => cliEnv(shared, { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region });
  const vrb = (args: string[]) => runVrb([...args, "--policy", policy], env(), { timeoutMs: 150_000 });
  const noAnswer = new RegExp(`s3://${bucket}/? did not answer[:(] ?no answer within 3s to `);

  beforeAll(async () => {
    const client = localS3Client(s3);
    await createLockedBucket(client, bucket).finally(() => client.destroy());
    writeFileSync(
      policy,
      [
        "cluster:",
        `  name: ${cluster}`,
        `  nodes: [${shared.nodes.map((n) => n.apiAddr).join(", ")}]`,
        `destination: { bucket: ${bucket}, endpoint: "${s3.endpoint}", region: ${s3.region}, timeoutSeconds: 3 }`,
        "copies:",
        `  - { name: offsite, type: file, path: "${offsite}", prefix: vault/ }`,
        "",
      ].join("\n"),
    );
    writeKeysFile(shared, keysFile);
    await putCanary(shared, canary);
    const backup = await vrb(["backup"]);
    expect(backup.code, backup.stderr).toBe(0);
  });

  afterAll(async () => {
    await Promise.all(targets.map((n) => stopNode(n)));
  });

  async function freshNode(): Promise<LocalNode> {
    const [node] = await startFreshNodes(tempDir("no-answer-target"), 1, { idPrefix: `hung-${product}`, shape: { product } });
    targets.push(node!);
    return node!;
  }

  it("list, status and restore latest end with exit 1 naming the store that did not answer; the restore changed nothing and names the copy", async () => {
    const target = await freshNode();
    // With a deadline of 20 s, the operator is told after 10 s what the command waits for.
    const patient = join(dir, "patient.yaml");
    writeFileSync(patient, readFileSync(policy, "utf8").replace("timeoutSeconds: 3", "timeoutSeconds: 20"));
    const restoreArgs = ["restore", "latest", "--nodes", target.apiAddr, "--unseal-keys-file", keysFile, "--policy", policy];
    const [list, status, restore, waiting, stopped] = await frozen(s3.pid!, () =>
      Promise.all([
        vrb(["list"]),
        vrb(["status"]),
        runVrb(restoreArgs, env(), { timeoutMs: 150_000 }),
        runVrb(["list", "--policy", patient], env(), { timeoutMs: 150_000 }),
        // SIGTERM while the snapshot is being looked up in the hung store: it stops there, not at the deadline.
        runVrb(restoreArgs, env(), { timeoutMs: 150_000, interrupt: { when: /resolve snapshot/, signal: "SIGTERM" } }),
      ]),
    );
    expect(stopped.code, stopped.stderr).toBe(143);
    expect(stopped.stderr).toContain("stopped at preflight: interrupted (SIGTERM)\n");
    expect(stopped.stderr).toContain("next: nothing was changed on any node");
    expect(stopped.stderr).not.toContain("no answer within 3s to the listing");
    expect(waiting.code, waiting.stderr).toBe(1);
    expect(waiting.stderr).toContain(
      `vrb: warning: s3://${bucket} has not answered the listing of s3://${bucket}/${cluster}/ for 10s; waiting up to 20s (the destination's timeoutSeconds)\n` +
        `vrb: error: s3://${bucket} did not answer: no answer within 20s to the listing of s3://${bucket}/${cluster}/`,
    );
    expect(list.code, list.stderr).toBe(1);
    expect(list.stderr).toMatch(noAnswer);
    expect(status.code, status.stderr).toBe(1);
    expect(status.stderr).toMatch(noAnswer);
    expect(restore.code, restore.stderr).toBe(1);
    expect(restore.stderr).toContain("nothing was changed on any node");
    expect(restore.stderr).toMatch(noAnswer);
    expect(restore.stderr).toContain(`this policy has copies: 'offsite' (file://${offsite}/vault/): run the same command with --destination offsite`);
    const health = await fetch(`${target.apiAddr}/v1/sys/health`);
    expect(health.status).toBe(501);
  });

  it("with the primary still hung, restore latest --destination offsite rebuilds a fresh node from the copy without waiting on the primary", async () => {
    const target = await freshNode();
    const r = await frozen(s3.pid!, () => vrb(["restore", "latest", "--destination", "offsite", "--nodes", target.apiAddr, "--unseal-keys-file", keysFile]));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("did not answer");
    const restored = new VaultClient({ addr: target.apiAddr, token: shared.keys!.rootToken });
    try {
      expect(await kvGet(restored, "secret", canary.path)).toEqual({ value: canary.value });
    } finally {
      await restored.close();
    }
  });

  it("a scheduled backup into the hung store ends with exit 1, says the upload stalled, and that its outcome could not be recorded", async () => {
    const r = await frozen(s3.pid!, () => vrb(["backup", "--stall-timeout", "3", "--retries", "0"]));
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/accepted no data for \d+s; aborted \(stall timeout\)/);
    expect(r.stderr).toMatch(new RegExp(`could not record the backup run in s3://${bucket}/${cluster}/vrb-status.json: no answer within 3s`));
  });
});
