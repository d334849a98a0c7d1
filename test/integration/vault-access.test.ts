import { randomBytes } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient } from "../../engine/index.js";
import { findActiveNode } from "../../engine/vault/operations.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { rootClient, sharedEnv } from "../support/env.js";

/**
 * The Vault policies and token role VaultBackupAccess renders, proven on the real OpenBao Raft
 * cluster: the HCL and role parameters are taken from what the component registers (under Pulumi
 * mocks), loaded into the cluster through the same API the Vault provider calls, and exercised
 * with real tokens.
 */

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const registered: Registered[] = [];
pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
      return { id: `${args.name}-id`, state: args.inputs as Record<string, unknown> };
    },
    call: (args) => args.inputs,
  },
  "vault-raft-backup",
  "vault-access-test",
  false,
);

const id = randomBytes(4).toString("hex");
const prefix = `vrb-t${id}`;
const canaryPath = `vrb-access-${id}/canary`;
const env = sharedEnv();
const root = rootClient(env);
let active: VaultClient;
const made = { policies: [] as string[], roles: [] as string[], tokens: [] as string[] };

/** camelCase Pulumi inputs → the snake_case parameters of Vault's API (what the provider sends). */
function apiParams(inputs: Record<string, unknown>, drop: string[]): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(inputs)
      .filter(([k]) => !drop.includes(k))
      .map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
  );
}

function byType(type: string): Registered[] {
  return registered.filter((r) => r.type === type);
}

async function mint(role: string): Promise<VaultClient> {
  const res = await active.post<{ auth: { client_token: string } }>(`auth/token/create/${role}`, {});
  made.tokens.push(res.body.auth.client_token);
  return new VaultClient({ addr: active.addr, token: res.body.auth.client_token, retries: 0 });
}

async function status(client: VaultClient, method: "GET" | "POST", path: string, body?: string): Promise<{ status: number; text: string; head: Buffer }> {
  const res = await client.open(method, path, body === undefined ? {} : { body, headers: { "content-type": "application/octet-stream" } });
  const buf = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, text: buf.subarray(0, 400).toString("utf8"), head: buf.subarray(0, 2) };
}

beforeAll(async () => {
  const { addr } = await findActiveNode(
    root,
    env.nodes.map((n) => n.apiAddr),
  );
  active = root.forNode(addr);

  const { VaultBackupAccess } = await import("../../components/index.js");
  const access = new VaultBackupAccess("proof", {
    cluster: "prod",
    canaries: [`secret/data/${canaryPath}`],
    access: { namePrefix: prefix, tokenRole: { period: "1h", maxTtl: "2h", boundCidrs: ["127.0.0.1/32"] } },
  });
  const fenced = new VaultBackupAccess("fenced", { cluster: "prod", access: { namePrefix: `${prefix}-fenced`, tokenRole: { boundCidrs: ["10.255.0.0/16"] } } });
  await new Promise((resolve) => pulumi.all([access.tokenRoleName, fenced.tokenRoleName]).apply(resolve));
  await new Promise((r) => setTimeout(r, 200));

  for (const p of byType("vault:index/policy:Policy")) {
    await active.put(`sys/policies/acl/${String(p.inputs.name)}`, { policy: p.inputs.policy });
    made.policies.push(String(p.inputs.name));
  }
  for (const r of byType("vault:tokenauth/authBackendRole:AuthBackendRole")) {
    await active.post(`auth/token/roles/${String(r.inputs.roleName)}`, apiParams(r.inputs, ["roleName"]));
    made.roles.push(String(r.inputs.roleName));
  }
  await ensureKvV2(active, "secret");
  await kvPut(active, "secret", canaryPath, { canary: "still-here" });
});

afterAll(async () => {
  for (const t of made.tokens) await active.post("auth/token/revoke", { token: t }).catch(() => undefined);
  for (const r of made.roles) await active.delete(`auth/token/roles/${r}`).catch(() => undefined);
  for (const p of made.policies) await active.delete(`sys/policies/acl/${p}`).catch(() => undefined);
  await active.delete(`secret/metadata/${canaryPath}`).catch(() => undefined);
  await root.close();
});

describe("a token from the snapshot token role, on the real cluster", () => {
  let token: VaultClient;
  beforeAll(async () => {
    token = await mint(`${prefix}-snapshot`);
  });

  it("is periodic, orphan, renewable, and carries the snapshot policy only (no default policy)", async () => {
    const self = (await token.get<{ data: { policies: string[]; orphan: boolean; renewable: boolean; ttl: number } }>("auth/token/lookup-self")).body.data;
    expect(self.policies).toEqual([`${prefix}-snapshot`]);
    expect(self.orphan).toBe(true);
    expect(self.renewable).toBe(true);
    expect(self.ttl).toBeGreaterThan(0);
    expect(self.ttl).toBeLessThanOrEqual(3600);
    // Periodic: however much is asked for, a renewal gives exactly one period again.
    const renewed = await token.post<{ auth: { lease_duration: number } }>("auth/token/renew-self", { increment: "9999h" });
    expect(renewed.body.auth.lease_duration).toBe(3600);
  });

  it("CAN take a snapshot: 200 and a gzip stream", async () => {
    const res = await status(token, "GET", "sys/storage/raft/snapshot");
    expect(res.status).toBe(200);
    expect([...res.head]).toEqual([0x1f, 0x8b]);
  });

  it("CAN read what the backup preflight reads", async () => {
    expect((await status(token, "GET", "sys/storage/raft/configuration")).status).toBe(200);
    expect((await status(token, "GET", "sys/storage/raft/autopilot/state")).status).toBe(200);
  });

  it("CAN read the mount tables the inventory names mounts with", async () => {
    expect((await status(token, "GET", "sys/mounts")).status).toBe(200);
    expect((await status(token, "GET", "sys/auth")).status).toBe(200);
  });

  it("CANNOT read a secret, not even the canary", async () => {
    expect((await status(token, "GET", `secret/data/${canaryPath}`)).status).toBe(403);
  });

  it("CANNOT restore: POST snapshot and snapshot-force are denied before the body is looked at", async () => {
    expect((await status(token, "POST", "sys/storage/raft/snapshot", "not a snapshot")).status).toBe(403);
    expect((await status(token, "POST", "sys/storage/raft/snapshot-force", "not a snapshot")).status).toBe(403);
  });

  it("CANNOT mint itself a broader token or change policies", async () => {
    await expect(token.post("auth/token/create", { policies: ["root"] })).rejects.toMatchObject({ status: 403 });
    await expect(token.put(`sys/policies/acl/${prefix}-snapshot`, { policy: 'path "*" { capabilities = ["sudo"] }' })).rejects.toMatchObject({ status: 403 });
  });
});

describe("bound CIDRs are enforced", () => {
  it("a token from a role bound to 10.255.0.0/16 is refused from 127.0.0.1", async () => {
    const fenced = await mint(`${prefix}-fenced-snapshot`);
    expect((await status(fenced, "GET", "sys/storage/raft/snapshot")).status).toBe(403);
  });
});

describe("a token with the restore policy", () => {
  let token: VaultClient;
  beforeAll(async () => {
    const res = await active.post<{ auth: { client_token: string } }>("auth/token/create", { policies: [`${prefix}-restore`], no_default_policy: true, ttl: "10m" });
    made.tokens.push(res.body.auth.client_token);
    token = new VaultClient({ addr: active.addr, token: res.body.auth.client_token, retries: 0 });
  });

  // The shared cluster must not actually be restored. A body that is not a gzip'd snapshot gets
  // past the ACL check (a denied token gets 403 before the body is read, as shown above) and is
  // then rejected by the snapshot decoder with a 500 "failed to decompress snapshot": proof of
  // permission, with the cluster untouched.
  it.each(["sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force"])("CAN reach restore at %s (ACL passes, invalid body rejected)", async (path) => {
    const res = await status(token, "POST", path, "not a snapshot");
    expect(res.status).not.toBe(403);
    expect(res.text).toMatch(/decompress snapshot/);
  });

  it("CAN read the canary and the Raft state that verification needs, but not take snapshots", async () => {
    const canary = await token.get<{ data: { data: { canary: string } } }>(`secret/data/${canaryPath}`);
    expect(canary.body.data.data.canary).toBe("still-here");
    expect((await status(token, "GET", "sys/storage/raft/autopilot/state")).status).toBe(200);
    expect((await status(token, "GET", "sys/storage/raft/snapshot")).status).toBe(403);
  });

  it("the cluster is still the same, healthy cluster afterwards", async () => {
    const leader = await active.get<{ ha_enabled: boolean }>("sys/leader", { anonymous: true });
    expect(leader.body.ha_enabled).toBe(true);
    await expect(active.get(`secret/data/${canaryPath}`)).resolves.toBeTruthy();
  });
});
