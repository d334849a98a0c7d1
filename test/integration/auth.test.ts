import { generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, accessPlan, type AccessPlan, type BackupPolicy } from "../../engine/index.js";
import { vaultLogin } from "../../engine/vault/login.js";
import { findActiveNode } from "../../engine/vault/operations.js";
import { createLocalCa, issueClientCertificate } from "../../engine/throwaway/tls.js";
import { bootstrapCluster, nodeClient, startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { VaultHttpError } from "../../engine/vault/client.js";
import { ProviderHost } from "../providers/host.js";
import { runHarness, s3CredentialEnv, testPolicy, type Registered } from "../providers/support.js";
import { cliEnv, PRODUCTS, rootClient, runVrb, sharedEnvOf, tempDir } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { plainOccurrences } from "../providers/support.js";

/**
 * Logging in the way production jobs do, on each product's shared real cluster (OpenBao and
 * HashiCorp Vault): the AppRole and CI JWT roles exactly as engine/access renders them for
 * VaultBackupAccess, `vrb backup` with only the credential files, renewal of a short-lived login
 * token, and revocation afterwards; client certificates on a one-node cluster of the product.
 */

describe.each(PRODUCTS)("%s", (product) => {
  const id = randomBytes(4).toString("hex");
  const env = sharedEnvOf(product);
  const root = rootClient(env);
  let active: VaultClient;
  const dir = tempDir(`auth-${product}`);
  const bucket = env.bucket!;
  const mounts = { approle: `approle-${id}`, jwt: `jwt-${id}`, k8s: `k8s-${id}` };
  const issuer = "https://token.actions.githubusercontent.com";
  const k8sIssuer = "https://kubernetes.default.svc.cluster.local";
  let plan: AccessPlan;
  /** The nodes with a standby first: a login there is redirected to the active node. */
  let standbyFirst: string[];
  let signingKey: KeyObject;

  /** The environment of a CI job or cron host: the cluster and S3, but no Vault token. */
  function jobEnv(extra: Record<string, string> = {}): Record<string, string> {
    return cliEnv(env, { VAULT_TOKEN: "", BAO_TOKEN: "", HOME: dir, ...extra });
  }

  function file(name: string, text: string): string {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  }

  function jwt(claims: Record<string, unknown>, key: KeyObject = signingKey): string {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const head = `${enc({ alg: "ES256", typ: "JWT", kid: "vrb-test" })}.${enc({ iat: now - 5, nbf: now - 5, exp: now + 300, ...claims })}`;
    return `${head}.${sign("sha256", Buffer.from(head), { key, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
  }

  async function secretId(wrapTtl?: string): Promise<string> {
    const path = `auth/${mounts.approle}/role/${plan.names.appRole}/secret-id`;
    if (!wrapTtl) return (await active.post<{ data: { secret_id: string } }>(path, {})).body.data.secret_id;
    const res = await active.open("POST", path, { body: "{}", headers: { "content-type": "application/json", "x-vault-wrap-ttl": wrapTtl } });
    const body = (await res.body.json()) as { wrap_info: { token: string } };
    return body.wrap_info.token;
  }

  /** Whether a token is still alive, looked up by its accessor with the root token. */
  async function accessorAlive(accessor: string): Promise<boolean> {
    try {
      await active.post("auth/token/lookup-accessor", { accessor });
      return true;
    } catch (err) {
      if (err instanceof VaultHttpError && (err.status === 400 || err.status === 403)) return false;
      throw err;
    }
  }

  function accessorIn(stderr: string): string {
    const m = /token accessor ([A-Za-z0-9._-]+)/.exec(stderr);
    expect(m, stderr).toBeTruthy();
    return m![1]!;
  }

  function policyFile(name: string, auth: string): string {
    return file(
      `${name}.yaml`,
      `cluster:\n  name: auth-${id}\n  nodes: [${standbyFirst.map((a) => `"${a}"`).join(", ")}]\n  auth:\n${auth
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n")}\ndestination: { bucket: ${bucket}, prefix: auth-${id}/ }\n`,
    );
  }

  beforeAll(async () => {
    const { addr } = await findActiveNode(
      root,
      env.nodes.map((n) => n.apiAddr),
    );
    active = root.forNode(addr);
    standbyFirst = [...env.nodes.map((n) => n.apiAddr).filter((a) => a !== addr), addr];
    plan = accessPlan({
      cluster: { name: "prod" },
      access: { namePrefix: `vrb-a${id}`, tokenRole: { period: "1h" }, appRole: { mount: mounts.approle }, ci: { mount: mounts.jwt, repository: "acme/platform", branch: "main" } },
    });
    await active.put(`sys/policies/acl/${plan.names.snapshotPolicy}`, { policy: plan.snapshotPolicyHcl });

    // The AppRole role with the parameters VaultBackupAccess gives it.
    await active.post(`sys/auth/${mounts.approle}`, { type: "approle" });
    const a = plan.appRole!;
    await active.post(`auth/${mounts.approle}/role/${plan.names.appRole}`, {
      token_policies: [plan.names.snapshotPolicy],
      token_no_default_policy: true,
      token_period: plan.tokenRole.periodSeconds,
      bind_secret_id: true,
      secret_id_ttl: a.secretIdTtlSeconds,
    });
    // A short-lived, renewable variant for the renewal test.
    await active.post(`auth/${mounts.approle}/role/short`, {
      token_policies: [plan.names.snapshotPolicy],
      token_no_default_policy: true,
      token_ttl: 6,
      token_max_ttl: 120,
      bind_secret_id: true,
    });

    // The CI JWT role as rendered, verified with a key pair made here (instead of GitHub's JWKS).
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    signingKey = pair.privateKey;
    const publicPem = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
    const c = plan.ci!;
    await active.post(`sys/auth/${mounts.jwt}`, { type: "jwt" });
    await active.post(`auth/${mounts.jwt}/config`, { jwt_validation_pubkeys: [publicPem], bound_issuer: c.issuer });
    await active.post(`auth/${mounts.jwt}/role/${plan.names.ciRole}`, {
      role_type: "jwt",
      user_claim: c.userClaim,
      bound_audiences: [c.audience],
      bound_claims_type: "string",
      bound_claims: c.boundClaims,
      token_policies: [plan.names.snapshotPolicy],
      token_no_default_policy: true,
      token_ttl: c.tokenTtlSeconds,
      token_max_ttl: c.tokenMaxTtlSeconds,
    });

    // Kubernetes service-account tokens verified the way the kubernetes method does it offline:
    // the issuer's public key, the service account as `sub`, the namespace as a bound claim.
    await active.post(`sys/auth/${mounts.k8s}`, { type: "jwt" });
    await active.post(`auth/${mounts.k8s}/config`, { jwt_validation_pubkeys: [publicPem], bound_issuer: k8sIssuer });
    await active.post(`auth/${mounts.k8s}/role/vrb-snapshot`, {
      role_type: "jwt",
      user_claim: "sub",
      bound_subject: "system:serviceaccount:vault-backup:vrb",
      bound_audiences: ["vault"],
      bound_claims: { "kubernetes.io/serviceaccount/namespace": "vault-backup" },
      token_policies: [plan.names.snapshotPolicy],
      token_no_default_policy: true,
      token_ttl: 600,
    });
  });

  afterAll(async () => {
    for (const m of Object.values(mounts)) await active.delete(`sys/auth/${m}`).catch(() => undefined);
    await active.delete(`sys/policies/acl/${plan.names.snapshotPolicy}`).catch(() => undefined);
    await root.close();
  });

  describe("approle", () => {
    let roleIdPath: string;
    beforeAll(async () => {
      const roleId = (await active.get<{ data: { role_id: string } }>(`auth/${mounts.approle}/role/${plan.names.appRole}/role-id`)).body.data.role_id;
      roleIdPath = file("role-id", roleId + "\n");
    });

    it("vrb backup with only role-id and secret-id files takes a snapshot, then revokes its login token", async () => {
      const secretPath = file("secret-id", await secretId());
      const policy = policyFile("approle", `method: approle\nmount: ${mounts.approle}\nroleIdFile: ${roleIdPath}\nsecretIdFile: ${secretPath}`);
      const res = await runVrb(["backup", "--policy", policy, "--json"], jobEnv());
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ ok: true, bucket });
      expect(res.stderr).toMatch(new RegExp(`logged in with approle at auth/${mounts.approle}`));
      expect(res.stderr).toMatch(/revoked the approle login/);
      expect(await accessorAlive(accessorIn(res.stderr))).toBe(false);
    });

    it("a response-wrapped secret ID is unwrapped (flags instead of the policy's auth section)", async () => {
      const wrapped = file("secret-id-wrapped", await secretId("120s"));
      const res = await runVrb(
        [
          "backup",
          "--cluster",
          `auth-${id}`,
          "--prefix",
          `auth-${id}/`,
          "--auth-method",
          "approle",
          "--auth-mount",
          mounts.approle,
          "--role-id-file",
          roleIdPath,
          "--secret-id-file",
          wrapped,
        ],
        jobEnv(),
      );
      expect(res.code, res.stderr).toBe(0);
      expect(await accessorAlive(accessorIn(res.stderr))).toBe(false);
      // A wrapping token can be unwrapped once: the second use is refused, and says why.
      const again = await runVrb(
        ["backup", "--cluster", `auth-${id}`, "--auth-method", "approle", "--auth-mount", mounts.approle, "--role-id-file", roleIdPath, "--secret-id-file", wrapped],
        jobEnv(),
      );
      expect(again.code, again.stderr).toBe(2);
      expect(again.stderr).toMatch(/already unwrapped/);
    });

    it("a backup that fails after the login still revokes the login token", async () => {
      // A role whose tokens may not read the Raft state: the login works, the backup fails in preflight.
      await active.post(`auth/${mounts.approle}/role/nosnap`, { token_policies: ["default"], token_ttl: 600, bind_secret_id: true });
      const roleId = (await active.get<{ data: { role_id: string } }>(`auth/${mounts.approle}/role/nosnap/role-id`)).body.data.role_id;
      const sid = (await active.post<{ data: { secret_id: string } }>(`auth/${mounts.approle}/role/nosnap/secret-id`, {})).body.data.secret_id;
      const res = await runVrb(
        ["backup", "--cluster", `auth-${id}`, "--auth-method", "approle", "--auth-mount", mounts.approle],
        jobEnv({ VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: sid }),
      );
      // A 403 is a configuration error (exit 2, not retried), said in one line (issue 26 point 9).
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(/stage: preflight/);
      expect(res.stderr).toContain("permission denied: the token may not read sys/storage/raft/configuration (needs 'read' on that path; see docs/auth.md)");
      expect(res.stderr).toMatch(/revoked the approle login/);
      expect(await accessorAlive(accessorIn(res.stderr))).toBe(false);
    });

    it("the VaultSnapshot provider logs in with the policy's cluster.auth (no token input) and revokes the token", async () => {
      const roleId = (await active.get<{ data: { role_id: string } }>(`auth/${mounts.approle}/role/${plan.names.appRole}/role-id`)).body.data.role_id;
      const base = testPolicy(env, "auth");
      const policy = { ...base, cluster: { ...base.cluster, auth: { method: "approle" as const, mount: mounts.approle } } };
      const registered = await runHarness<Registered[]>("serialize.mjs", { policy, unsealKeys: env.keys!.unsealKeysB64 });
      const snap = registered.find((r) => r.name === "snap")!;
      const host = await ProviderHost.start("VaultSnapshot", { ...s3CredentialEnv(env), VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: await secretId() });
      try {
        const checked = await host.check({}, { ...snap.inputs, __provider: snap.provider });
        expect(checked.failures).toEqual([]);
        const created = await host.create(checked.inputs);
        expect(created.outs.status).toBe("good");
        expect(JSON.stringify(created.outs)).not.toContain(roleId);
        expect(host.logs.stderr).toMatch(/revoked the approle login/);
        expect(await accessorAlive(accessorIn(host.logs.stderr))).toBe(false);
      } finally {
        await host.stop();
      }
    });

    it("both providers take login material as secret inputs: VaultSnapshot create/read logs in with AppRole values; no secret ID or JWT in plain text anywhere", async () => {
      const roleId = (await active.get<{ data: { role_id: string } }>(`auth/${mounts.approle}/role/${plan.names.appRole}/role-id`)).body.data.role_id;
      const sid = await secretId();
      const ciJwt = jwt({ iss: issuer, aud: plan.ci!.audience, sub: "repo:acme/platform:ref:refs/heads/main", repository: "acme/platform", ref: "refs/heads/main" });
      const base = testPolicy(env, "login");
      const policy = { ...base, cluster: { ...base.cluster, auth: { method: "approle" as const, mount: mounts.approle } } };
      const restorePolicy = { ...base, cluster: { ...base.cluster, auth: { method: "jwt" as const, mount: mounts.jwt, role: plan.names.ciRole } } };
      const registered = await runHarness<Registered[]>("serialize.mjs", {
        policy,
        unsealKeys: env.keys!.unsealKeysB64,
        login: { roleId, secretId: sid },
        restoreLogin: { jwt: ciJwt },
        restoreMode: "in-place",
      });
      const snap = registered.find((r) => r.name === "snap")!;
      const restore = registered.find((r) => r.name === "restore")!;
      for (const r of registered) {
        for (const secret of [sid, ciJwt, roleId]) {
          expect(r.provider.includes(secret)).toBe(false);
          expect(plainOccurrences(r.inputs, secret)).toEqual([]);
        }
      }
      // The wrappers are there (the searches above would pass vacuously otherwise).
      expect(JSON.stringify(snap.inputs.login)).toContain(sid);
      expect(JSON.stringify(restore.inputs.login)).toContain(ciJwt);

      // The host gets plain values (it accepts no secrets); no VAULT_* credential in its environment.
      const host = await ProviderHost.start("VaultSnapshot", s3CredentialEnv(env));
      const restoreHost = await ProviderHost.start("StagedRestore", s3CredentialEnv(env));
      try {
        const checked = await host.check({}, { ...snap.inputs, login: { roleId, secretId: sid }, __provider: snap.provider });
        expect(checked.failures).toEqual([]);
        const bad = await host.check({}, { ...snap.inputs, login: { roleId }, __provider: snap.provider });
        expect(bad.failures).toEqual([{ property: "login", reason: "AppRole login needs both roleId and secretId" }]);
        const created = await host.create(checked.inputs);
        expect(created.outs.status).toBe("good");
        expect(host.logs.stderr).toMatch(new RegExp(`logged in with approle at auth/${mounts.approle}`));
        expect(host.logs.stderr).toMatch(/revoked the approle login/);
        expect(await accessorAlive(accessorIn(host.logs.stderr))).toBe(false);
        const read = await host.read(created.id, created.outs, checked.inputs);
        expect(read.outs).toMatchObject({ status: "good", sha256: created.outs.sha256 });
        for (const secret of [sid, roleId]) {
          for (const text of [JSON.stringify(created), JSON.stringify(read), host.logs.stderr]) expect(text.includes(secret)).toBe(false);
        }

        // StagedRestore: a JWT logs in to the live cluster for an in-place restore; a rebuild is refused in check.
        const { unsealKeys: _wrapped, ...restoreRegistered } = restore.inputs;
        const restoreInputs = { ...restoreRegistered, policy: restorePolicy, confirm: restorePolicy.cluster.name, login: { jwt: ciJwt }, __provider: restore.provider };
        const inPlace = await restoreHost.check({}, restoreInputs);
        expect(inPlace.failures).toEqual([]);
        const rebuild = await restoreHost.check({}, { ...restoreInputs, mode: "rebuild" });
        expect(rebuild.failures.map((f) => f.property)).toEqual(["login"]);
        expect(rebuild.failures[0]!.reason).toMatch(/in-place restores/);
        for (const text of [JSON.stringify(inPlace.failures), JSON.stringify(rebuild.failures), restoreHost.logs.stderr]) expect(text.includes(ciJwt)).toBe(false);
      } finally {
        await host.stop();
        await restoreHost.stop();
      }
    });

    it("a wrong secret ID exits 2 naming the method and mount, and prints no credential", async () => {
      const wrong = randomUUID();
      const res = await runVrb(
        ["backup", "--cluster", `auth-${id}`, "--auth-method", "approle", "--auth-mount", mounts.approle, "--role-id-file", roleIdPath],
        jobEnv({ VAULT_SECRET_ID: wrong }),
      );
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(new RegExp(`approle login at auth/${mounts.approle}`));
      expect(res.stderr).toMatch(/wrong role ID or secret ID/);
      expect(res.stderr).not.toContain(wrong);
    });
  });

  describe("jwt (CI OIDC) and kubernetes", () => {
    const ci = () => ({ iss: issuer, aud: plan.ci!.audience, sub: "repo:acme/platform:ref:refs/heads/main", repository: "acme/platform", ref: "refs/heads/main" });

    it("a CI token with the bound claims logs in and backs up; its login token is revoked", async () => {
      const token = file("ci.jwt", jwt(ci()));
      const res = await runVrb(
        ["backup", "--cluster", `auth-${id}`, "--prefix", `auth-${id}/`, "--auth-method", "jwt", "--auth-mount", mounts.jwt, "--auth-role", plan.names.ciRole, "--jwt-file", token],
        jobEnv(),
      );
      expect(res.code, res.stderr).toBe(0);
      expect(await accessorAlive(accessorIn(res.stderr))).toBe(false);
    });

    it("a CI token from another branch is refused with exit 2 and a clear message", async () => {
      const res = await runVrb(
        ["backup", "--cluster", `auth-${id}`, "--auth-method", "jwt", "--auth-mount", mounts.jwt, "--auth-role", plan.names.ciRole],
        jobEnv({ VRB_JWT: jwt({ ...ci(), ref: "refs/heads/feature" }) }),
      );
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(new RegExp(`jwt login at auth/${mounts.jwt} \\(role ${plan.names.ciRole}\\)`));
      expect(res.stderr).toMatch(/bound claim does not match/);
    });

    it("an expired CI token is refused as expired", async () => {
      const now = Math.floor(Date.now() / 1000);
      const res = await runVrb(
        ["backup", "--cluster", `auth-${id}`, "--auth-method", "jwt", "--auth-mount", mounts.jwt, "--auth-role", plan.names.ciRole],
        jobEnv({ VRB_JWT: jwt({ ...ci(), iat: now - 7200, nbf: now - 7200, exp: now - 3600 }) }),
      );
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(/expired/);
    });

    it("kubernetes: a service account token file and role (verified by a jwt mount, as no API server runs here)", async () => {
      const sa = file("sa-token", jwt({ iss: k8sIssuer, aud: ["vault"], sub: "system:serviceaccount:vault-backup:vrb", "kubernetes.io/serviceaccount/namespace": "vault-backup" }));
      const policy = policyFile("k8s", `method: kubernetes\nmount: ${mounts.k8s}\nrole: vrb-snapshot\njwtFile: ${sa}`);
      const res = await runVrb(["backup", "--policy", policy], jobEnv());
      expect(res.code, res.stderr).toBe(0);
      expect(await accessorAlive(accessorIn(res.stderr))).toBe(false);

      const other = file("sa-other", jwt({ iss: k8sIssuer, aud: ["vault"], sub: "system:serviceaccount:vault-backup:vrb", "kubernetes.io/serviceaccount/namespace": "default" }));
      const refused = await runVrb(["backup", "--policy", policy, "--jwt-file", other], jobEnv());
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/kubernetes login at auth\/k8s-.* \(role vrb-snapshot\)/);
    });
  });

  describe("token lifetime", () => {
    const cluster = (auth: Partial<BackupPolicy["cluster"]["auth"]>): BackupPolicy["cluster"] => ({
      name: "auth",
      nodes: env.nodes.map((n) => n.apiAddr),
      auth: { method: "token", ...auth } as BackupPolicy["cluster"]["auth"],
    });

    it("a short-lived login token (ttl 6 s) is renewed through a backup that takes longer (S3 slowed by the fault proxy), then revoked", async () => {
      const roleId = (await active.get<{ data: { role_id: string } }>(`auth/${mounts.approle}/role/short/role-id`)).body.data.role_id;
      const sid = (await active.post<{ data: { secret_id: string } }>(`auth/${mounts.approle}/role/short/secret-id`, {})).body.data.secret_id;
      // The first three writes to S3 (of the snapshot object or its parts) wait 7 s each: 21 s, over three times the TTL
      // (all five writes would add 14 s more per product and prove nothing more).
      const proxy = await new FaultProxy(env.s3!.endpoint).start();
      proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, limit: 3, fault: { kind: "delay", ms: 7_000 } }];
      try {
        const started = Date.now();
        const res = await runVrb(
          ["backup", "--cluster", `auth-${id}`, "--prefix", `auth-${id}/`, "--auth-method", "approle", "--auth-mount", mounts.approle, "--json"],
          jobEnv({ VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: sid, AWS_ENDPOINT_URL_S3: proxy.url }),
        );
        const took = Date.now() - started;
        expect(res.code, res.stderr).toBe(0);
        expect(res.stderr).toMatch(/logged in with approle .*ttl 6s/);
        console.log(`backup with a 6 s login token took ${took} ms through the slowed S3 (${proxy.stats.injected.delay ?? 0} delayed requests)`);
        expect(took).toBeGreaterThan(2 * 6_000);
        // revoke-self at the end only works with a live token: it was renewed past its 6 s TTL.
        expect(res.stderr).toMatch(/revoked the approle login/);
        expect(res.stderr).not.toMatch(/renewing the .* failed|could not revoke/);
        expect(await accessorAlive(accessorIn(res.stderr))).toBe(false);
      } finally {
        await proxy.stop();
      }
    });

    it("a login session reports its renewals and is dead once closed", async () => {
      const roleId = (await active.get<{ data: { role_id: string } }>(`auth/${mounts.approle}/role/short/role-id`)).body.data.role_id;
      const sid = (await active.post<{ data: { secret_id: string } }>(`auth/${mounts.approle}/role/short/secret-id`, {})).body.data.secret_id;
      const session = await vaultLogin({ cluster: cluster({ method: "approle", mount: mounts.approle }), env: { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: sid } });
      expect(session.obtained).toBe(true);
      expect(session.ttlSeconds).toBe(6);
      const client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: session.token });
      try {
        await new Promise((r) => setTimeout(r, 8_000));
        const self = await client.get<{ data: { ttl: number } }>("auth/token/lookup-self");
        expect(self.body.data.ttl).toBeGreaterThan(0);
        expect(session.renewals).toBeGreaterThanOrEqual(1);
        await session.close();
        expect(await accessorAlive(session.accessor!)).toBe(false);
      } finally {
        await session.close();
        await client.close();
      }
    });

    it("a token handed in (VAULT_TOKEN, a token file) is used as is and never revoked", async () => {
      const made = (await active.post<{ auth: { client_token: string; accessor: string } }>("auth/token/create", { policies: [plan.names.snapshotPolicy], ttl: "10m" })).body.auth;
      const sink = file("agent-sink", made.client_token);
      const fromFile = await vaultLogin({ cluster: cluster({ tokenFile: sink }), env: {}, homeDir: dir });
      expect(fromFile).toMatchObject({ obtained: false, source: sink, token: made.client_token });
      await fromFile.close();
      const fromEnv = await vaultLogin({ cluster: cluster({ tokenFile: sink }), env: { VAULT_TOKEN: "s.fromtheenvironment0000000" }, homeDir: dir });
      expect(fromEnv.source).toBe("VAULT_TOKEN");
      expect(await accessorAlive(made.accessor)).toBe(true);
      const res = await runVrb(["backup", "--cluster", `auth-${id}`, "--prefix", `auth-${id}/`, "--token-file", sink], jobEnv());
      expect(res.code, res.stderr).toBe(0);
      expect(await accessorAlive(made.accessor)).toBe(true);
    });
  });

  describe("cert (mTLS): a listener that requires client certificates, and the cert auth method", () => {
    const certDir = tempDir(`auth-mtls-${product}`);
    const ca = createLocalCa(certDir);
    let node: LocalNode;
    let client: ReturnType<typeof issueClientCertificate>;
    let stranger: ReturnType<typeof issueClientCertificate>;

    beforeAll(async () => {
      [node] = await startFreshNodes(certDir, 1, { idPrefix: "mtls", shape: { product, ca, requireClientCert: true } });
      const keys = await bootstrapCluster([node!], { shares: 1, threshold: 1 });
      const admin = nodeClient(node!, { token: keys.rootToken });
      client = issueClientCertificate(ca, join(certDir, "client"), "vrb-backup");
      stranger = issueClientCertificate(ca, join(certDir, "stranger"), "someone-else");
      try {
        await admin.put(`sys/policies/acl/${plan.names.snapshotPolicy}`, { policy: plan.snapshotPolicyHcl });
        await admin.post("sys/auth/cert", { type: "cert" });
        await admin.post("auth/cert/certs/vrb-snapshot", {
          certificate: readFileSync(ca.caCertPath, "utf8"),
          allowed_common_names: ["vrb-backup"],
          token_policies: [plan.names.snapshotPolicy],
          token_no_default_policy: true,
          token_ttl: 600,
        });
      } finally {
        await admin.close();
      }
    });

    afterAll(async () => {
      if (node) await stopNode(node);
    });

    const args = () => ["backup", "--vault-addr", node.apiAddr, "--cluster", `auth-${id}`, "--prefix", `auth-${id}/`, "--auth-method", "cert", "--auth-role", "vrb-snapshot"];
    const mtlsEnv = (extra: Record<string, string> = {}) => jobEnv({ VRB_NODES: "", VAULT_ADDR: "", BAO_ADDR: "", VAULT_CACERT: ca.caCertPath, ...extra });

    it("backs up over mTLS, logged in with the client certificate; the login token is revoked", async () => {
      expect(node.product).toBe(product);
      // The listener really requires a client certificate: without one the TLS handshake fails.
      const anonymous = new VaultClient({ addr: node.apiAddr, caCert: ca.caCertPath, retries: 0 });
      await expect(anonymous.get("sys/health", { anonymous: true })).rejects.toThrow(/cannot reach/);
      await anonymous.close();
      const res = await runVrb([...args(), "--client-cert", client.certFile, "--client-key", client.keyFile], mtlsEnv());
      expect(res.code, res.stderr).toBe(0);
      expect(res.stderr).toMatch(/logged in with cert at auth\/cert as vrb-snapshot/);
      expect(res.stderr).toMatch(/revoked the cert login/);
    });

    it("VAULT_CLIENT_CERT / VAULT_CLIENT_KEY work as for the vault CLI; a certificate the role does not allow is refused with exit 2", async () => {
      const refused = await runVrb(args(), mtlsEnv({ VAULT_CLIENT_CERT: stranger.certFile, VAULT_CLIENT_KEY: stranger.keyFile }));
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/cert login at auth\/cert \(role vrb-snapshot\)/);
      expect(refused.stderr).toMatch(/not accepted by any cert role/);
    });

    it("without a client certificate the cert method says what is missing (exit 2)", async () => {
      const res = await runVrb(args(), mtlsEnv());
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr).toMatch(/cert login needs a client certificate/);
    });
  });
});
