import { describe, expect, it } from "vitest";
import { existsSync, statSync } from "node:fs";
import { GetObjectCommand, GetObjectLockConfigurationCommand, GetBucketVersioningCommand, ListObjectVersionsCommand, PutObjectCommand } from "@aws-sdk/client-s3";

import { waitFor } from "../../engine/wait.js";
import { loadEnvironment, localDown } from "../../devenv/environment.js";
import { isAlive } from "../../engine/throwaway/process.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { autopilotState, raftConfiguration } from "../../engine/vault/raft-peers.js";
import { cliEnv, rootClient, runVrb, s3For, sharedEnv, tempDir } from "../support/env.js";

describe("local environment (real OpenBao Raft cluster + real S3 server)", () => {
  it("has three voters, one leader and healthy autopilot", async () => {
    const env = sharedEnv();
    const client = rootClient(env);
    const config = await raftConfiguration(client);
    expect(config.servers).toHaveLength(3);
    expect(config.servers.every((s) => s.voter)).toBe(true);
    expect(config.servers.filter((s) => s.leader)).toHaveLength(1);
    const ap = await autopilotState(client);
    expect(ap.healthy).toBe(true);
    expect(ap.failure_tolerance).toBe(1);
    const roles = await Promise.all(env.nodes.map((n) => nodeHealth(client.forNode(n.apiAddr)).then((h) => h.role)));
    expect(roles.filter((r) => r === "active")).toHaveLength(1);
    expect(roles.filter((r) => r === "standby")).toHaveLength(2);
    await client.close();
  });

  it("replicates a secret written through the leader to every node", async () => {
    const env = sharedEnv();
    const client = rootClient(env);
    await ensureKvV2(client, "local-env-kv");
    const value = `v-${Date.now()}`;
    expect(await kvPut(client, "local-env-kv", "replicated", { value })).toBeGreaterThanOrEqual(1);
    const leader = await client.get<{ raft_committed_index: number }>("sys/leader");
    for (const node of env.nodes) {
      const c = client.forNode(node.apiAddr);
      // Each node's own applied index must reach the write before we read through it.
      await waitFor(
        async () => {
          const l = await c.get<{ raft_applied_index: number }>("sys/leader");
          return l.body.raft_applied_index >= leader.body.raft_committed_index ? true : undefined;
        },
        { what: `${node.id} to apply the write`, timeoutMs: 10_000 },
      );
      // A standby serves this read from its own replicated state (mount upgrade included).
      const read = await waitFor(() => kvGet(c, "local-env-kv", "replicated"), { what: `${node.id} to serve the secret`, timeoutMs: 10_000 });
      expect(read).toEqual({ value });
    }
    await client.close();
  });

  it("serves S3 with a versioned, object-locked bucket", async () => {
    const env = sharedEnv();
    const s3 = s3For(env);
    const bucket = env.bucket!;
    const key = `local-env/${Date.now()}.txt`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "first" }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "second" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await got.Body!.transformToString()).toBe("second");
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
    expect(versions.Versions?.filter((v) => v.Key === key)).toHaveLength(2);
    const versioning = await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }));
    expect(versioning.Status).toBe("Enabled");
    const lock = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
    expect(lock.ObjectLockConfiguration?.ObjectLockEnabled).toBe("Enabled");
    s3.destroy();
  });

  it("keeps its state file private (0600 in a 0700 folder)", () => {
    const env = sharedEnv();
    expect(statSync(`${env.dir}/state.json`).mode & 0o777).toBe(0o600);
    expect(statSync(env.dir).mode & 0o777).toBe(0o700);
  });

  it("vrb local status --json reports roles, raft index and the S3 endpoint", async () => {
    const env = sharedEnv();
    const r = await runVrb(["local", "status", "--json", "--dir", env.dir]);
    expect(r.code, r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as { nodes: { role: string; raftIndex?: number; voter?: boolean }[]; s3: { endpoint: string } };
    expect(status.nodes.map((n) => n.role).sort()).toEqual(["active", "standby", "standby"]);
    expect(status.nodes.every((n) => (n.raftIndex ?? 0) > 0 && n.voter === true)).toBe(true);
    expect(status.s3.endpoint).toBe(env.s3!.endpoint);
  });

  it("vrb local env prints export lines a shell can eval", async () => {
    const env = sharedEnv();
    const r = await runVrb(["local", "env", "--dir", env.dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`export VAULT_ADDR='${env.nodes[0]!.apiAddr}'`);
    expect(r.stdout).toContain(`export AWS_ENDPOINT_URL_S3='${env.s3!.endpoint}'`);
    expect(r.stdout).toMatch(/^export VAULT_TOKEN='.+'$/m);
  });

  it("vrb local up --no-init starts uninitialised nodes, stop-node --wipe and down leave nothing running", async () => {
    const dir = tempDir("local-cli");
    try {
      const up = await runVrb(["local", "up", "--dir", dir, "--nodes", "2", "--no-init", "--no-s3", "--json"], cliEnv(sharedEnv()));
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toMatch(/starting node 2\/2/);
      const status = JSON.parse(up.stdout) as { nodes: { role: string }[] };
      expect(status.nodes.map((n) => n.role)).toEqual(["uninitialized", "uninitialized"]);
      const state = loadEnvironment(dir)!;
      const pids = state.nodes.map((n) => n.pid!);
      expect(pids.every((pid) => isAlive(pid))).toBe(true);

      const wipe = await runVrb(["local", "stop-node", "node-2", "--wipe", "--dir", dir]);
      expect(wipe.code, wipe.stderr).toBe(0);
      expect(isAlive(pids[1])).toBe(false);
      expect(existsSync(state.nodes[1]!.dataDir)).toBe(false);

      const down = await runVrb(["local", "down", "--dir", dir]);
      expect(down.code, down.stderr).toBe(0);
      expect(pids.some((pid) => isAlive(pid))).toBe(false);
      expect(existsSync(dir)).toBe(false);
    } finally {
      // A failed assertion must not leave the nodes running.
      await localDown(dir);
    }
  });

  it("refuses bad options with a usage error (exit 2) naming the option", async () => {
    const r = await runVrb(["local", "up", "--nodes", "zero", "--dir", tempDir("bad")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--nodes");
  });
});
