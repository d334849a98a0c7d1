import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type RestoreReport } from "../../engine/index.js";
import { wipeNode } from "../../engine/throwaway/nodes.js";
import { productProfile } from "../../engine/vault/product.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { waitForHealthyVoters } from "../../engine/vault/raft-peers.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { addNodes, localDown, localUp, localVaultClient, saveEnvironment, type LocalEnvironment } from "../../devenv/environment.js";
import { cliEnv, PRODUCTS, runVrb, sharedEnvOf, tempDir } from "../support/env.js";

// TLS with a private CA: the nodes serve https with certificates of a CA made for the test; the
// CLI trusts it through VAULT_CACERT, as an operator's shell would. Backup, verify and a rebuild
// into 3 new TLS nodes, with the product's default listener settings and no token. Once per product.
describe.each(PRODUCTS)("%s", (product) => {
  const profile = productProfile(product);
  const shared = sharedEnvOf(product);
  const run = Date.now().toString(36);
  const prefix = `restore-tls-${product}-${run}/`;
  let S: LocalEnvironment;
  let keysFile: string;
  const written = new Map<string, string>();

  /** The CLI's environment for the TLS cluster: S3 of the shared environment, Vault of S, no token unless asked. */
  function env(opts: { token?: boolean; ca?: boolean } = {}): Record<string, string> {
    const e = cliEnv(shared);
    for (const k of ["VAULT_TOKEN", "BAO_TOKEN", "VRB_NODES", "VAULT_CACERT", "BAO_CACERT"]) delete e[k];
    e.VAULT_ADDR = S.nodes[0]!.apiAddr;
    e.BAO_ADDR = S.nodes[0]!.apiAddr;
    e.VRB_CLUSTER = "rst-tls";
    if (opts.ca !== false) e.VAULT_CACERT = S.tls!.caCertPath;
    if (opts.token) e.VAULT_TOKEN = S.keys!.rootToken;
    return e;
  }

  beforeAll(async () => {
    S = await localUp({ product, dir: tempDir(`restore-tls-src-${product}`), nodes: 1, s3: false, clusterName: "rst-tls", tls: true });
    const c = localVaultClient(S, { token: S.keys!.rootToken });
    await ensureKvV2(c, "secret");
    for (let i = 0; i < 40; i++) {
      const value = `${run}-tls-${i}`;
      await kvPut(c, "secret", `tls/item-${i}`, { value });
      written.set(`tls/item-${i}`, value);
    }
    await c.close();
    keysFile = join(tempDir("restore-tls-keys"), "init.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: S.keys!.unsealKeysB64, unseal_threshold: S.keys!.threshold }), { mode: 0o600 });
  });

  afterAll(async () => {
    if (S) await localDown(S.dir);
  });

  describe(`backup and rebuild over TLS with a private CA (real ${profile.displayName} + S3)`, () => {
    it("backs up and verifies over https, trusting the CA from VAULT_CACERT", async () => {
      expect(S.nodes[0]!.apiAddr).toMatch(/^https:\/\//);
      const b = await runVrb(["backup", "--prefix", prefix, "--json"], env({ token: true }));
      expect(b.code, b.stderr).toBe(0);
      const v = await runVrb(["verify", "latest", "--prefix", prefix, "--json"], env({ token: true }));
      expect(v.code, v.stderr).toBe(0);
    });

    it("refuses to rebuild onto TLS nodes it cannot trust (no CA given), naming the certificate problem and changing nothing", async () => {
      const targets = await addNodes(S, 1);
      const r = await runVrb(["restore", "latest", "--nodes", targets[0]!.apiAddr, "--unseal-keys-file", keysFile, "--prefix", prefix, "--json"], env({ ca: false }));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/certificate/i);
      expect(r.stderr).toMatch(/failed at preflight/);
      expect((await nodeHealth(localVaultClient(S, { addr: targets[0]!.apiAddr }))).role).toBe("uninitialized");
    });

    it("rebuilds the lost cluster into 3 new TLS nodes with vrb restore, no token: every secret back, 3 voters", async () => {
      await Promise.all(S.nodes.map((n) => wipeNode(n)));
      const fresh = await addNodes(S, 3);
      S.nodes = fresh;
      saveEnvironment(S);
      const r = await runVrb(["restore", "latest", "--nodes", fresh.map((n) => n.apiAddr).join(","), "--unseal-keys-file", keysFile, "--prefix", prefix, "--json"], env());
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as RestoreReport;
      expect(report.ok).toBe(true);
      expect(report.nodes.map((n) => n.role).sort()).toEqual(["active", "standby", "standby"]);
      if (profile.generateRootByDefault) {
        // Generate-root served by default (Vault 1.x): a short-lived root token made over https from
        // the unseal keys verifies everything, and is revoked.
        expect(report.token).toBe("generated");
        expect(report.verification).toBe("full");
        expect(report.steps.find((s) => s.step === "revoke generated root token")?.result).toBe("ok");
      } else {
        // Refused by default (OpenBao): only token-free checks; the follow-up commands carry the CA,
        // so they work as printed.
        expect(report.token).toBe("none");
        expect(report.verification).toBe("health");
        expect(report.notVerified[0]!.command).toContain(`-ca-cert=${S.tls!.caCertPath}`);
        // Each command that needs a token says so, every part of an `a && b` included: pasted with
        // the token filled in, none fails with a bare 403.
        for (const n of report.notVerified) {
          for (const part of n.command.split(" && ")) expect(part).toMatch(/^VAULT_TOKEN=<a token of the original cluster> bao /);
        }
      }

      const c = localVaultClient(S, { addr: fresh[2]!.apiAddr, token: S.keys!.rootToken });
      const voters = await waitForHealthyVoters(c, 3, 60_000);
      expect(voters.servers.filter((s) => s.voter)).toHaveLength(3);
      for (const [path, value] of written) expect(await kvGet(c, "secret", path)).toEqual({ value });
      await c.close();
      expect(r.stdout + r.stderr).not.toContain(S.keys!.rootToken);
    });
  });
});
