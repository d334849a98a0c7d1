import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { VaultClient } from "../../engine/index.js";
import { toolPath } from "../../engine/throwaway/binaries.js";
import { startTransitSealServer, stopTransitSealServer, transitSealServerRunning } from "../../devenv/transit.js";
import { productProfile } from "../../engine/vault/product.js";
import { isAlive } from "../../engine/throwaway/process.js";
import { nodeHealth, sealStatus, waitUntilRole } from "../../engine/vault/operations.js";
import { autopilotState, raftConfiguration } from "../../engine/vault/raft-peers.js";
import { addNodes, createTransitKey, loadEnvironment, localDown, localUp, localVaultClient, type LocalEnvironment } from "../../devenv/environment.js";
import { VaultHttpError } from "../../engine/vault/client.js";
import { PRODUCTS, rootClient, runVrb, sharedEnvOf, tempDir, type CliResult } from "../support/env.js";

/** The error a GET of the unauthenticated generate-root status gives, or "ok". */
async function generateRootAttempt(client: VaultClient): Promise<number | "ok"> {
  try {
    await client.get("sys/generate-root/attempt", { anonymous: true });
    return "ok";
  } catch (err) {
    if (err instanceof VaultHttpError) return err.status;
    throw err;
  }
}

/** Every process the environment started: nodes and its own transit seal server. */
function pidsOf(state: LocalEnvironment): number[] {
  return [...state.nodes.map((n) => n.pid!), ...(state.transitSeal && !state.transitSealShared ? [state.transitSeal.pid!] : [])];
}

// The listener defaults of each product: OpenBao >= 2.5.3 refuses the unauthenticated generate-root
// endpoints unless relaxed; Vault 1.x serves them (productProfile(product).generateRootByDefault).
describe.each(PRODUCTS)("%s: local environment shapes: listener defaults", (product) => {
  const profile = productProfile(product);
  /** What the unauthenticated generate-root status gives with the product's default listener. */
  const byDefault = profile.generateRootByDefault ? "ok" : 405;

  it("keeps the product's default listener: the unauthenticated generate-root endpoints are served or refused after init as the product decides", async () => {
    const env = sharedEnvOf(product);
    expect(env.shape).toEqual({ seal: "shamir", tls: false, unauthedGenerateRoot: false });
    expect(readFileSync(env.nodes[0]!.configPath, "utf8")).not.toContain("disable_unauthed_generate_root_endpoints");
    const client = rootClient(env);
    try {
      // OpenBao 2.7.2 with default listener settings: 405 "unsupported operation" once initialised.
      // HashiCorp Vault 1.21.1: served by default.
      expect(await generateRootAttempt(client)).toBe(byDefault);
    } finally {
      await client.close();
    }
  });

  it("vrb local up --unauthed-generate-root relaxes it, as a recorded non-default shape (on Vault it adds nothing to the config)", async () => {
    const dir = tempDir(`shape-genroot-${product}`);
    try {
      const up = await runVrb(["local", "up", "--product", product, "--dir", dir, "--nodes", "1", "--no-s3", "--unauthed-generate-root"]);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout).toContain("unauthenticated generate-root ENABLED (non-default)");
      const state = loadEnvironment(dir)!;
      expect(state.shape.unauthedGenerateRoot).toBe(true);
      expect(state.nodes[0]!.product ?? "openbao").toBe(product);
      const config = readFileSync(state.nodes[0]!.configPath, "utf8");
      if (profile.unauthedGenerateRootListener) expect(config).toContain("disable_unauthed_generate_root_endpoints = false");
      // Vault 1.x has no such key: its default already serves the endpoints, and an unknown key would be a config error.
      else expect(config).not.toContain("disable_unauthed_generate_root_endpoints");
      const client = localVaultClient(state);
      try {
        expect(await generateRootAttempt(client)).toBe("ok");
      } finally {
        await client.close();
      }
    } finally {
      await localDown(dir);
    }
  });
});

describe("local environment shapes: vrb local up --seal transit --tls", () => {
  const dir = tempDir("shape-transit-tls");
  let state: LocalEnvironment;
  const outputs: CliResult[] = [];
  const vrb = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runVrb([...args, "--dir", dir], env);
    outputs.push(r);
    return r;
  };

  beforeAll(async () => {
    const up = await vrb(["local", "up", "--seal", "transit", "--tls", "--no-s3"]);
    expect(up.code, up.stderr).toBe(0);
    state = loadEnvironment(dir)!;
  });

  afterAll(async () => {
    // A failed assertion must not leave processes running.
    await localDown(dir);
  });

  it("records its shape, the seal server and the CA; keeps recovery keys in the 0600 state file", () => {
    expect(state.shape).toMatchObject({ seal: "transit", tls: true, unauthedGenerateRoot: false });
    expect(state.keys!.sealType).toBe("transit");
    expect(state.keys!.unsealKeysB64).toEqual([]);
    expect(state.keys!.recoveryKeysB64).toHaveLength(5);
    expect(state.keys!.threshold).toBe(3);
    expect(statSync(`${dir}/state.json`).mode & 0o777).toBe(0o600);
    const onDisk = readFileSync(`${dir}/state.json`, "utf8");
    for (const k of state.keys!.recoveryKeysB64!) expect(onDisk).toContain(k);
    const ts = state.transitSeal!;
    expect(transitSealServerRunning(ts)).toBe(true);
    expect(existsSync(ts.logPath)).toBe(true);
    // The nodes get the limited token, never the seal server's root token.
    for (const n of state.nodes) {
      expect(n.transitSeal).toEqual({ address: ts.address, mountPath: ts.mountPath, keyName: ts.keyName, token: ts.token });
      expect(readFileSync(n.configPath, "utf8")).not.toContain(ts.rootToken);
      expect(statSync(n.configPath).mode & 0o777).toBe(0o600);
      expect(statSync(n.tls!.keyFile).mode & 0o777).toBe(0o600);
    }
    expect(statSync(state.tls!.caKeyPath).mode & 0o777).toBe(0o600);
  });

  it("the seal token may only encrypt and decrypt with its key", async () => {
    const ts = state.transitSeal!;
    const seal = new VaultClient({ addr: ts.address, token: ts.token, retries: 0 });
    try {
      const mount = ts.mountPath.replace(/\/$/, "");
      const enc = await seal.post<{ data: { ciphertext: string } }>(`${mount}/encrypt/${ts.keyName}`, { plaintext: Buffer.from("x").toString("base64") });
      expect(enc.body.data.ciphertext).toMatch(/^vault:v1:|^[a-z]+:v1:/);
      await expect(seal.get("sys/mounts")).rejects.toMatchObject({ status: 403 });
      await expect(seal.post(`${mount}/keys/another`, {})).rejects.toMatchObject({ status: 403 });
    } finally {
      await seal.close();
    }
  });

  it("has three voters, healthy autopilot, and reports a transit seal with recovery keys", async () => {
    const client = localVaultClient(state, { token: state.keys!.rootToken });
    try {
      const config = await raftConfiguration(client);
      expect(config.servers).toHaveLength(3);
      expect(config.servers.every((s) => s.voter)).toBe(true);
      const ap = await autopilotState(client);
      expect(ap.healthy).toBe(true);
      expect(ap.failure_tolerance).toBe(1);
      const seal = await sealStatus(client);
      expect(seal).toMatchObject({ type: "transit", recovery_seal: true, sealed: false, n: 5, t: 3 });
      // Default listener here too.
      expect(await generateRootAttempt(client)).toBe(405);
    } finally {
      await client.close();
    }
  });

  it("serves https with its CA; a client without the CA is refused with a certificate error", async () => {
    expect(state.nodes.every((n) => n.apiAddr.startsWith("https://127.0.0.1:") && n.clusterAddr.startsWith("https://"))).toBe(true);
    const withCa = localVaultClient(state, { retries: 0 });
    const withoutCa = new VaultClient({ addr: state.nodes[0]!.apiAddr, retries: 0 });
    try {
      expect((await nodeHealth(withCa)).role).toBe("active");
      const err = await withoutCa.get("sys/health", { anonymous: true }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    } finally {
      await withCa.close();
      await withoutCa.close();
    }
  });

  it("vrb local env exports VAULT_CACERT, and the real bao CLI works with the exported variables", async () => {
    const r = await vrb(["local", "env"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`export VAULT_CACERT='${state.tls!.caCertPath}'`);
    expect(r.stdout).toContain(`export BAO_CACERT='${state.tls!.caCertPath}'`);
    expect(r.stdout).toContain(`export VAULT_ADDR='${state.nodes[0]!.apiAddr}'`);
    const sh = spawnSync("sh", ["-c", `eval "$VRB_EXPORTS" && "$BAO_BIN" status -format=json`], {
      encoding: "utf8",
      env: { PATH: process.env.PATH, HOME: dir, VRB_EXPORTS: r.stdout, BAO_BIN: toolPath("bao") },
    });
    expect(sh.status, sh.stderr).toBe(0);
    const status = JSON.parse(sh.stdout) as { type: string; sealed: boolean; initialized: boolean };
    expect(status).toMatchObject({ type: "transit", sealed: false, initialized: true });
  });

  it("vrb local status shows the seal server and the shape", async () => {
    const text = await vrb(["local", "status"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("shape: seal transit, TLS");
    expect(text.stdout).toContain(`transit seal server: ${state.transitSeal!.address} running`);
    const json = await vrb(["local", "status", "--json"]);
    const status = JSON.parse(json.stdout) as { transitSeal: { running: boolean; keyName: string }; shape: { seal: string; tls: boolean } };
    expect(status.transitSeal).toMatchObject({ running: true, keyName: state.transitSeal!.keyName });
    expect(status.shape).toMatchObject({ seal: "transit", tls: true });
  });

  it("a stopped node started again unseals itself (no keys given)", async () => {
    expect((await vrb(["local", "stop-node", "node-2"])).code).toBe(0);
    const node = state.nodes[1]!;
    expect(isAlive(node.pid, { marker: node.configPath })).toBe(false);
    const start = await vrb(["local", "start-node", "node-2"]);
    expect(start.code, start.stderr).toBe(0);
    const client = localVaultClient(state, { addr: node.apiAddr, retries: 0 });
    try {
      const h = await waitUntilRole(client, ["standby"], "node-2 to unseal itself", 30_000);
      expect(h.sealed).toBe(false);
    } finally {
      await client.close();
    }
  });

  it("adds fresh nodes of the same shape, or sealed by another transit key", async () => {
    const added = await vrb(["local", "add-nodes", "1"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^node-4 https:\/\/127\.0\.0\.1:\d+$/m);
    state = loadEnvironment(dir)!;
    const same = state.nodes.find((n) => n.id === "node-4")!;
    expect(same.transitSeal?.keyName).toBe(state.transitSeal!.keyName);
    expect(same.tls?.caFile).toBe(state.tls!.caCertPath);

    await createTransitKey(state, "other-key");
    const [other] = await addNodes(state, 1, { transitKeyName: "other-key" });
    expect(other!.id).toBe("node-5");
    expect(other!.transitSeal?.keyName).toBe("other-key");
    expect(other!.transitSeal?.token).not.toBe(state.transitSeal!.token);
    expect(readFileSync(other!.configPath, "utf8")).toContain(`key_name        = "other-key"`);

    const client = localVaultClient(state, { retries: 0 });
    try {
      for (const n of [same, other!]) {
        const s = await sealStatus(client.forNode(n.apiAddr));
        expect(s).toMatchObject({ initialized: false, type: "transit" });
      }
    } finally {
      await client.close();
    }
  });

  it("never prints recovery keys or seal tokens; vrb local down leaves no process (nodes and seal server)", async () => {
    state = loadEnvironment(dir)!;
    const pids = pidsOf(state);
    expect(pids).toHaveLength(6);
    expect(pids.every((p) => isAlive(p))).toBe(true);
    const down = await vrb(["local", "down"]);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toContain("transit seal server");
    expect(pids.filter((p) => isAlive(p))).toEqual([]);
    expect(existsSync(dir)).toBe(false);
    const secrets = [...state.keys!.recoveryKeysB64!, state.transitSeal!.token, state.transitSeal!.rootToken, ...Object.values(state.transitSeal!.otherKeys)];
    const everything = outputs.map((o) => o.stdout + o.stderr).join("\n");
    for (const s of secrets) expect(everything.includes(s)).toBe(false);
  });
});

describe("local environment shapes: a transit seal server shared by environments", () => {
  it("seals two environments with one server; localDown leaves a shared server running", async () => {
    const sealDir = tempDir("shape-seal");
    const dirA = tempDir("shape-shared-a");
    const dirB = tempDir("shape-shared-b");
    const server = await startTransitSealServer(sealDir);
    const sealPid = server.pid;
    try {
      const [a, b] = await Promise.all([
        localUp({ dir: dirA, nodes: 1, s3: false, seal: { transit: server } }),
        localUp({ dir: dirB, nodes: 1, s3: false, seal: { transit: server }, init: false }),
      ]);
      expect(a.transitSealShared).toBe(true);
      expect(a.keys!.sealType).toBe("transit");
      expect(b.nodes[0]!.transitSeal?.address).toBe(server.address);
      const client = localVaultClient(a, { retries: 0 });
      try {
        expect((await nodeHealth(client)).role).toBe("active");
      } finally {
        await client.close();
      }
      await localDown(dirA);
      await localDown(dirB);
      expect(transitSealServerRunning(server)).toBe(true);
      expect(isAlive(a.nodes[0]!.pid)).toBe(false);
    } finally {
      await localDown(dirA);
      await localDown(dirB);
      await stopTransitSealServer(server);
      rmSync(sealDir, { recursive: true, force: true });
    }
    expect(isAlive(sealPid)).toBe(false);
  });
});
