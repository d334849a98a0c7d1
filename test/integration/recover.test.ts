import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recoverSecrets, SnapshotStore, type RecoverReport, type VaultClient } from "../../engine/index.js";
import { VaultHttpError } from "../../engine/vault/client.js";
import { ensureKvV2, kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { cliEnv, PRODUCTS, rootClient, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir, writeKeysFile } from "../support/env.js";
import { pidsMentioning } from "../support/processes.js";

// Every test here runs once per product (OpenBao, HashiCorp Vault) on that product's shared cluster.
describe.each(PRODUCTS)("%s", (product) => {
  // One backup of the SHARED cluster (own mounts, own prefix and cluster name), then damage on the
  // live cluster, then `vrb recover` twice (dry run, real), each through a throwaway 1-node cluster.
  const shared = sharedEnvOf(product);
  const run = Date.now().toString(36);
  const kv2 = `rec-kv2-${run}`;
  const kv1 = `rec-kv1-${run}`;
  const aclPolicy = `rec-pol-${run}`;
  const cluster = `rec-${run}`;
  const prefix = `recover-it-${run}/`;
  const policyHcl = `path "${kv2}/data/app/*" { capabilities = ["read"] }\n`;

  /** Every value written below; none may appear in any output. Unique to this run. */
  const dbVersions = [1, 2, 3].map((v) => ({ password: `db-pw-${run}-v${v}`, user: `db-user-${run}` }));
  const apiValue = { key: `api-key-${run}-original` };
  const sameValue = { token: `same-token-${run}` };
  const legacyValue = { secret: `legacy-secret-${run}` };
  const overwritten = { key: `api-key-${run}-overwritten` };
  const dbCustomMetadata = { owner: "team-payments", ticket: `T-${run}` };
  const allValues = [...dbVersions.flatMap((d) => Object.values(d)), apiValue.key, sameValue.token, legacyValue.secret, overwritten.key];

  let root: VaultClient;
  let keysFile: string;
  const env = () => cliEnv(shared);
  const recoverArgs = (...extra: string[]) => [
    "recover",
    "latest",
    "--cluster",
    cluster,
    "--prefix",
    prefix,
    "--unseal-keys-file",
    keysFile,
    "--path",
    `${kv2}/app/`,
    "--path",
    `${kv1}/legacy/token`,
    "--acl-policy",
    aclPolicy,
    ...extra,
  ];

  const leaked = (text: string) => allValues.filter((v) => text.includes(v));

  async function metadataOf(mount: string, path: string): Promise<{ current_version: number; custom_metadata: Record<string, string> | null } | undefined> {
    try {
      return (await root.get<{ data: { current_version: number; custom_metadata: Record<string, string> | null } }>(`${mount}/metadata/${path}`)).body.data;
    } catch (err) {
      if (err instanceof VaultHttpError && err.status === 404) return undefined;
      throw err;
    }
  }

  async function readKv1(path: string): Promise<Record<string, unknown> | undefined> {
    try {
      return (await root.get<{ data: Record<string, unknown> }>(`${kv1}/${path}`)).body.data;
    } catch (err) {
      if (err instanceof VaultHttpError && err.status === 404) return undefined;
      throw err;
    }
  }

  async function readPolicy(): Promise<string | undefined> {
    try {
      return (await root.get<{ data: { policy: string } }>(`sys/policies/acl/${aclPolicy}`)).body.data.policy;
    } catch (err) {
      if (err instanceof VaultHttpError && err.status === 404) return undefined;
      throw err;
    }
  }

  beforeAll(async () => {
    root = rootClient(shared);
    await ensureKvV2(root, kv2);
    await root.post(`sys/mounts/${kv1}`, { type: "kv", options: { version: "1" } });
    for (const d of dbVersions) await kvPut(root, kv2, "app/db", d);
    await root.post(`${kv2}/metadata/app/db`, { custom_metadata: dbCustomMetadata });
    await kvPut(root, kv2, "app/api", apiValue);
    await kvPut(root, kv2, "app/same", sameValue);
    await root.post(`${kv1}/legacy/token`, legacyValue);
    await root.put(`sys/policies/acl/${aclPolicy}`, { policy: policyHcl });
    keysFile = join(tempDir("recover-keys"), "keys.json");
    writeKeysFile(shared, keysFile);

    const backup = await runVrb(["backup", "--cluster", cluster, "--prefix", prefix, "--json"], env());
    expect(backup.code, backup.stderr).toBe(0);

    // The incident: one secret deleted with all its versions, one overwritten, a KV v1 secret and a policy deleted.
    await root.delete(`${kv2}/metadata/app/db`);
    await kvPut(root, kv2, "app/api", overwritten);
    await root.delete(`${kv1}/legacy/token`);
    await root.delete(`sys/policies/acl/${aclPolicy}`);
  });

  afterAll(async () => {
    await root.delete(`sys/mounts/${kv2}`).catch(() => undefined);
    await root.delete(`sys/mounts/${kv1}`).catch(() => undefined);
    await root.delete(`sys/policies/acl/${aclPolicy}`).catch(() => undefined);
    await root.close();
  });

  describe("vrb recover (shared cluster, real S3 server, throwaway 1-node cluster)", () => {
    it("refuses a recover with nothing to recover before any node starts (exit 2)", async () => {
      const r = await runVrb(["recover", "latest", "--cluster", cluster, "--prefix", prefix, "--unseal-keys-file", keysFile], env());
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/nothing to recover: give --path/);
      expect(r.stderr).not.toMatch(/starting .* node/);
    });

    it("finds no snapshot before any node starts; tears the throwaway node down when the recovery fails after it started (library call)", async () => {
      const workDir = tempDir("recover-work");
      const s3 = s3For(shared);
      const lines: string[] = [];
      const progress = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
      const live = { cluster: { nodes: [shared.nodes[0]!.apiAddr] }, token: shared.keys!.rootToken };
      try {
        // No snapshot under this prefix: the snapshot is resolved (for its product) before any node starts.
        const none = recoverSecrets({
          store: new SnapshotStore(s3StoreOn(s3, shared.bucket!, `recover-none-${run}/`)),
          cluster,
          paths: [`${kv2}/app/db`],
          live,
          workDir,
          progress,
        });
        await expect(none).rejects.toThrow(/snapshot/i);
        expect(lines.some((l) => l.startsWith("recover: starting"))).toBe(false);
        // Keys of no cluster (well-formed): the node starts, takes the snapshot, and cannot be unsealed.
        const wrongKeys = { kind: "unseal" as const, keys: shared.keys!.unsealKeysB64.map(() => Buffer.alloc(33, 7).toString("base64")) };
        const failed = recoverSecrets({
          store: new SnapshotStore(s3StoreOn(s3, shared.bucket!, prefix)),
          cluster,
          paths: [`${kv2}/app/db`],
          live,
          keys: wrongKeys,
          workDir,
          progress,
        });
        await expect(failed).rejects.toThrow(/unseal/i);
      } finally {
        s3.destroy();
      }
      // The node was started in workDir (and was running); now its folder is gone and no process uses it.
      expect(lines.some((l) => l.startsWith(`recover: starting 1 fresh node(s) in ${workDir}/vrb-recover-`))).toBe(true);
      expect(lines.some((l) => /^recover: stopped 1 node\(s\), removed /.test(l))).toBe(true);
      expect(readdirSync(workDir)).toEqual([]);
      expect(pidsMentioning(workDir)).toEqual([]);
    });

    it("--dry-run lists missing / differs / same and changes nothing; then the real run brings every item back, KV v2 versions in order", async () => {
      // The dry run in the human format: one line per item, state and kind, never a value.
      const dry = await runVrb(recoverArgs("--dry-run"), env());
      expect(dry.code, dry.stderr).toBe(0);
      const lines = dry.stdout.split("\n").map((l) => l.trim().split(/\s+/));
      const line = (path: string) => lines.find((l) => l[2] === path)?.slice(0, 2);
      expect(dry.stdout).toMatch(/^DRY RUN \(nothing written\)/);
      expect(line(`${kv2}/app/api`)).toEqual(["differs", "kv2"]);
      expect(line(`${kv2}/app/db`)).toEqual(["missing", "kv2"]);
      expect(line(`${kv2}/app/same`)).toEqual(["same", "kv2"]);
      expect(line(`${kv1}/legacy/token`)).toEqual(["missing", "kv1"]);
      expect(line(`sys/policies/acl/${aclPolicy}`)).toEqual(["missing", "policy"]);
      expect(dry.stdout).toContain("3 missing, 1 differ, 1 same; 0 written");
      const dryDir = /torn down: 1 throwaway node\(s\) stopped, (\S+) removed/.exec(dry.stdout)?.[1];
      expect(dryDir).toMatch(/vrb-recover-/);
      expect(existsSync(dryDir!)).toBe(false);
      // Nothing changed on the live cluster.
      expect(await metadataOf(kv2, "app/db")).toBeUndefined();
      expect(await kvGet(root, kv2, "app/api")).toEqual(overwritten);
      expect(await readKv1("legacy/token")).toBeUndefined();
      expect(await readPolicy()).toBeUndefined();

      const real = await runVrb(recoverArgs("--json"), env());
      expect(real.code, real.stderr).toBe(0);
      const report = JSON.parse(real.stdout) as RecoverReport;
      expect(report.dryRun).toBe(false);
      // The throwaway node ran the snapshot's own product.
      expect(report.snapshot.product).toBe(product);
      expect(report.throwaway.product).toBe(product);
      const byPath = Object.fromEntries(report.paths.map((p) => [p.path, p]));
      expect(byPath[`${kv2}/app/db`]).toMatchObject({ state: "missing", action: "written", versionsWritten: 3, metadataWritten: true });
      expect(byPath[`${kv2}/app/api`]).toMatchObject({ state: "differs", action: "written", versionsWritten: 1 });
      expect(byPath[`${kv2}/app/same`]).toMatchObject({ state: "same", action: "none" });
      expect(byPath[`${kv1}/legacy/token`]).toMatchObject({ state: "missing", action: "written" });
      expect(byPath[`sys/policies/acl/${aclPolicy}`]).toMatchObject({ state: "missing", action: "written" });
      expect(report.summary).toEqual({ missing: 3, differs: 1, same: 1, written: 4 });

      // The deleted secret is back with its whole history, in order, and its custom metadata.
      const db = await metadataOf(kv2, "app/db");
      expect(db?.current_version).toBe(3);
      expect(db?.custom_metadata).toEqual(dbCustomMetadata);
      for (const [i, d] of dbVersions.entries()) expect(await kvGet(root, kv2, "app/db", i + 1)).toEqual(d);
      // The overwritten one: the snapshot's value as a NEW version; the overwrite stays in history.
      expect((await metadataOf(kv2, "app/api"))?.current_version).toBe(3);
      expect(await kvGet(root, kv2, "app/api")).toEqual(apiValue);
      expect(await kvGet(root, kv2, "app/api", 2)).toEqual(overwritten);
      // Unchanged: no new version.
      expect((await metadataOf(kv2, "app/same"))?.current_version).toBe(1);
      expect(await readKv1("legacy/token")).toEqual(legacyValue);
      expect((await readPolicy())?.trim()).toBe(policyHcl.trim());

      // The throwaway node is gone: folder removed, no process left that used it.
      expect(report.teardown.stopped).toBe(1);
      expect(existsSync(report.teardown.removed)).toBe(false);
      expect(pidsMentioning(report.teardown.removed)).toEqual([]);
      // Progress on stderr says what happened per path, never with a value.
      expect(real.stderr).toContain(`recover: sys/policies/acl/${aclPolicy}: missing -> written`);
      expect(real.stderr).toContain(`recover: ${kv2}/app/db: missing -> written (3 version(s))`);
      expect(real.stderr).toMatch(/recover: stopped 1 node\(s\), removed /);
      expect(leaked(dry.stdout + dry.stderr + real.stdout + real.stderr)).toEqual([]);
    });

    it("a write refused part-way: exit 1, the report says what was written, what failed, what was not attempted, and the command for the rest", async () => {
      // The incident again, and a live token that may write the KV v2 mount but not the KV v1 one: the
      // items are done in order (KV v2 subtree, KV v1 secret, policy), so the v1 write fails in the middle.
      await root.delete(`${kv2}/metadata/app/db`);
      await root.delete(`${kv1}/legacy/token`);
      await root.delete(`sys/policies/acl/${aclPolicy}`);
      const limited = `rec-limited-${run}`;
      await root.put(`sys/policies/acl/${limited}`, {
        policy: [
          `path "${kv2}/*" { capabilities = ["create", "read", "update", "list"] }`,
          `path "${kv1}/*" { capabilities = ["read", "list"] }`,
          `path "sys/policies/acl/${aclPolicy}" { capabilities = ["create", "read", "update"] }`,
        ].join("\n"),
      });
      const token = (await root.post<{ auth: { client_token: string } }>("auth/token/create", { policies: [limited], ttl: "10m", no_parent: true })).body.auth.client_token;
      // The snapshot's own root token reads the throwaway node (the limited token did not exist then).
      const withRoot = join(tempDir("recover-keys"), "keys.json");
      writeFileSync(withRoot, JSON.stringify({ ...JSON.parse(readFileSync(keysFile, "utf8")), root_token: shared.keys!.rootToken }), { mode: 0o600 });
      try {
        const args = recoverArgs("--json").map((a) => (a === keysFile ? withRoot : a));
        const r = await runVrb(args, cliEnv(shared, { VAULT_TOKEN: token, BAO_TOKEN: token }));
        expect(r.code, r.stderr).toBe(1);
        const report = JSON.parse(r.stdout) as RecoverReport & { ok: false; error: { stage: string } };
        expect(report).toMatchObject({ ok: false, error: { stage: "recover" } });
        const byPath = Object.fromEntries(report.paths.map((p) => [p.path, p]));
        expect(byPath[`${kv2}/app/db`]).toMatchObject({ state: "missing", action: "written", versionsWritten: 3 });
        expect(byPath[`${kv2}/app/api`]).toMatchObject({ state: "same", action: "none" });
        expect(report.failure).toMatchObject({ path: `${kv1}/legacy/token`, notAttempted: [`sys/policies/acl/${aclPolicy}`] });
        const again = `vrb recover s3://${report.snapshot.bucket}/${report.snapshot.key} --path ${kv1}/legacy/token --acl-policy ${aclPolicy}`;
        expect(report.failure!.next).toContain(`the live token may not write ${kv1}/legacy/token`);
        expect(report.failure!.next).toContain(again);
        // The same on stderr for a person: written, failed, not attempted, next.
        expect(r.stderr).toContain(`recover ${kv1}/legacy/token on the live cluster failed: `);
        expect(r.stderr).toMatch(/answered 403/);
        expect(r.stderr).toContain(`written before it: ${kv2}/app/db`);
        expect(r.stderr).toContain(`not written: ${kv1}/legacy/token (failed); not attempted: sys/policies/acl/${aclPolicy}`);
        expect(r.stderr).toContain(again);
        // The live cluster holds exactly what the report says.
        expect((await metadataOf(kv2, "app/db"))?.current_version).toBe(3);
        expect(await readKv1("legacy/token")).toBeUndefined();
        expect(await readPolicy()).toBeUndefined();
        expect(report.teardown.stopped).toBe(1);
        expect(existsSync(report.teardown.removed)).toBe(false);
        expect(leaked(r.stdout + r.stderr)).toEqual([]);
        expect(r.stdout + r.stderr).not.toContain(token);
      } finally {
        await root.post("auth/token/revoke", { token });
        await root.delete(`sys/policies/acl/${limited}`);
      }
    });
  });
});
