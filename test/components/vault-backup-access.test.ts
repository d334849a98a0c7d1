import { beforeAll, describe, expect, it } from "vitest";

import { snapshotPolicyHcl, restorePolicyHcl } from "../../engine/access/vault-policies.js";
import { named, recordResources, settle, valueOf, type Registered } from "./mocks.js";

const registered: Registered[] = recordResources();
let components: typeof import("../../components/index.js");
beforeAll(async () => {
  components = await import("../../components/index.js");
});

const T = {
  policy: "vault:index/policy:Policy",
  tokenRole: "vault:tokenauth/authBackendRole:AuthBackendRole",
  appRole: "vault:appRole/authBackendRole:AuthBackendRole",
  jwtRole: "vault:jwt/authBackendRole:AuthBackendRole",
  jwtMount: "vault:jwt/authBackend:AuthBackend",
  mount: "vault:index/authBackend:AuthBackend",
};

describe("VaultBackupAccess with no options", () => {
  beforeAll(async () => {
    const a = new components.VaultBackupAccess("plain", { cluster: "prod" });
    await valueOf(a.tokenRoleName);
    await settle(registered);
  });

  it("loads the engine's snapshot and restore HCL under per-cluster names", () => {
    expect(named(registered, T.policy, "plain-snapshot").inputs).toEqual({ name: "vrb-prod-snapshot", policy: snapshotPolicyHcl() });
    expect(named(registered, T.policy, "plain-restore").inputs).toEqual({ name: "vrb-prod-restore", policy: restorePolicyHcl() });
  });

  it("has a token role for periodic, orphan, renewable tokens that can carry the snapshot policy only", () => {
    const role = named(registered, T.tokenRole, "plain-token-role").inputs;
    expect(role).toMatchObject({
      roleName: "vrb-prod-snapshot",
      allowedPolicies: ["vrb-prod-snapshot"],
      disallowedPolicies: ["root"],
      orphan: true,
      renewable: true,
      tokenType: "service",
      tokenPeriod: 86_400,
      tokenNoDefaultPolicy: true,
    });
    expect(role.tokenBoundCidrs).toBeUndefined();
    expect(role.tokenExplicitMaxTtl).toBeUndefined();
  });

  it("creates no AppRole or CI role unless asked", () => {
    expect(registered.filter((r) => r.name.startsWith("plain") && (r.type === T.appRole || r.type === T.jwtRole))).toEqual([]);
  });
});

describe("VaultBackupAccess with bound CIDRs, max TTL, AppRole and a CI role", () => {
  beforeAll(async () => {
    const a = new components.VaultBackupAccess("full", {
      cluster: "prod",
      canaries: ["secret/data/dr-canary"],
      access: {
        namePrefix: "acme-vault",
        tokenRole: { period: "6h", maxTtl: "7d", boundCidrs: ["10.20.0.0/16"] },
        appRole: { createMount: true, mount: "approle-backup", secretIdBoundCidrs: ["10.20.0.0/16"] },
        ci: { repository: "acme/platform", branch: "release", createMount: true },
      },
    });
    await valueOf(a.tokenRoleName);
    await settle(registered);
  });

  it("binds the token role to the CIDRs and caps the token's life", () => {
    expect(named(registered, T.tokenRole, "full-token-role").inputs).toMatchObject({
      roleName: "acme-vault-snapshot",
      allowedPolicies: ["acme-vault-snapshot"],
      tokenPeriod: 21_600,
      tokenExplicitMaxTtl: 604_800,
      tokenBoundCidrs: ["10.20.0.0/16"],
    });
  });

  it("restore policy may read the canaries", () => {
    expect(named(registered, T.policy, "full-restore").inputs.policy).toBe(restorePolicyHcl({ canaries: ["secret/data/dr-canary"] }));
  });

  it("AppRole issues snapshot-only tokens and needs a secret id bound to the CIDRs", () => {
    expect(named(registered, T.mount, "full-approle").inputs).toMatchObject({ type: "approle", path: "approle-backup" });
    expect(named(registered, T.appRole, "full-approle-role").inputs).toMatchObject({
      backend: "approle-backup",
      tokenPolicies: ["acme-vault-snapshot"],
      tokenNoDefaultPolicy: true,
      bindSecretId: true,
      secretIdTtl: 3600,
      secretIdBoundCidrs: ["10.20.0.0/16"],
    });
  });

  it("CI role accepts only the repository's branch, with the expected audience, and grants the snapshot policy only", () => {
    expect(named(registered, T.jwtMount, "full-jwt").inputs).toMatchObject({
      path: "jwt",
      oidcDiscoveryUrl: "https://token.actions.githubusercontent.com",
      boundIssuer: "https://token.actions.githubusercontent.com",
    });
    expect(named(registered, T.jwtRole, "full-ci-role").inputs).toMatchObject({
      roleName: "acme-vault-snapshot-ci",
      roleType: "jwt",
      boundClaimsType: "string",
      boundClaims: { repository: "acme/platform", ref: "refs/heads/release" },
      boundAudiences: ["https://github.com/acme"],
      tokenPolicies: ["acme-vault-snapshot"],
      tokenNoDefaultPolicy: true,
      tokenTtl: 3600,
    });
  });
});

describe("VaultBackupAccess rejects bad input before registering anything", () => {
  it.each([
    [{ cluster: "Prod!" }, /cluster\.name must be lowercase letters/],
    [{ cluster: "prod", access: { tokenRole: { period: "soon" } } }, /access\.tokenRole\.period must be a duration/],
    [{ cluster: "prod", access: { ci: { branch: "main" } } }, /access\.ci\.repository is required/],
    [{ cluster: "prod", access: { ci: { repository: "acme/platform", branch: "*" } } }, /access\.ci\.branch must be one branch name/],
    [{ cluster: "prod", canaries: ["/secret/x"] }, /verify\.canaries\.0 must be a Vault path without a leading/],
  ])("%j", async (args, message) => {
    const before = registered.length;
    expect(() => new components.VaultBackupAccess("bad", args as never)).toThrow(message);
    await settle(registered);
    expect(registered.length).toBe(before);
  });
});
