import * as pulumi from "@pulumi/pulumi";
import { accessPlan, policySchema, validatePart, type AccessOptionsInput, type AccessPlan } from "../engine/index.js";
import { vaultSdk } from "./cloud-sdks.js";

export interface VaultBackupAccessArgs {
  /** The cluster's name (`cluster.name` of the policy); names default to `vrb-<cluster>-...`. */
  cluster: string;
  /** Token role, AppRole and CI options: the policy's `access` section. */
  access?: AccessOptionsInput;
  /** Paths the post-restore verification reads (`verify.canaries`); the restore policy may read them. */
  canaries?: string[];
}

const accessPartSchema = policySchema.pick({ access: true, verify: true });
const clusterNameSchema = policySchema.shape.cluster.shape.name;

/**
 * Least-privilege Vault access for backups: a snapshot policy (take snapshots, preflight reads,
 * nothing else), a separate restore policy, and ways to obtain a snapshot-only token: a token role
 * (periodic, orphan, renewable), optionally an AppRole and a JWT role bound to one CI repository
 * and branch, so CI holds no long-lived secret. The HCL comes from engine/access/vault-policies.ts.
 */
export class VaultBackupAccess extends pulumi.ComponentResource {
  readonly snapshotPolicyName: pulumi.Output<string>;
  readonly restorePolicyName: pulumi.Output<string>;
  readonly tokenRoleName: pulumi.Output<string>;
  readonly appRoleName?: pulumi.Output<string>;
  readonly ciRoleName?: pulumi.Output<string>;
  readonly plan: AccessPlan;

  constructor(name: string, args: VaultBackupAccessArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before registering anything: bad input changes nothing.
    const cluster = validatePart(clusterNameSchema, args.cluster, ["cluster", "name"], "VaultBackupAccess");
    const part = validatePart(accessPartSchema, { access: args.access, verify: args.canaries ? { canaries: args.canaries } : undefined }, [], "VaultBackupAccess");
    const plan = accessPlan({ cluster: { name: cluster }, access: part.access, verify: part.verify });
    super("vault-raft-backup:index:VaultBackupAccess", name, {}, opts);
    this.plan = plan;
    const parent = { parent: this };
    const vault = vaultSdk();

    const snapshotPolicy = new vault.Policy(`${name}-snapshot`, { name: plan.names.snapshotPolicy, policy: plan.snapshotPolicyHcl }, parent);
    const restorePolicy = new vault.Policy(`${name}-restore`, { name: plan.names.restorePolicy, policy: plan.restorePolicyHcl }, parent);
    this.snapshotPolicyName = snapshotPolicy.name;
    this.restorePolicyName = restorePolicy.name;
    // Every token below carries the snapshot policy only; the restore policy is for the DR identity.
    const snapshotOnly = [snapshotPolicy.name];

    const tokenRole = new vault.tokenauth.AuthBackendRole(
      `${name}-token-role`,
      {
        roleName: plan.names.tokenRole,
        allowedPolicies: snapshotOnly,
        disallowedPolicies: ["root"],
        orphan: true,
        renewable: true,
        tokenType: "service",
        tokenPeriod: plan.tokenRole.periodSeconds,
        tokenExplicitMaxTtl: plan.tokenRole.explicitMaxTtlSeconds,
        tokenBoundCidrs: plan.tokenRole.boundCidrs,
        tokenNoDefaultPolicy: true,
      },
      parent,
    );
    this.tokenRoleName = tokenRole.roleName;

    if (plan.appRole) {
      const a = plan.appRole;
      const mount = a.createMount ? new vault.AuthBackend(`${name}-approle`, { type: "approle", path: a.mount, description: "AppRole for Vault snapshots" }, parent) : undefined;
      const role = new vault.approle.AuthBackendRole(
        `${name}-approle-role`,
        {
          backend: mount ? mount.path : a.mount,
          roleName: plan.names.appRole,
          tokenPolicies: snapshotOnly,
          tokenNoDefaultPolicy: true,
          tokenPeriod: plan.tokenRole.periodSeconds,
          tokenExplicitMaxTtl: plan.tokenRole.explicitMaxTtlSeconds,
          tokenBoundCidrs: a.boundCidrs,
          bindSecretId: true,
          secretIdTtl: a.secretIdTtlSeconds,
          secretIdBoundCidrs: a.secretIdBoundCidrs,
        },
        parent,
      );
      this.appRoleName = role.roleName;
    }

    if (plan.ci) {
      const c = plan.ci;
      const mount = c.createMount
        ? new vault.jwt.AuthBackend(
            `${name}-jwt`,
            { path: c.mount, type: "jwt", oidcDiscoveryUrl: c.issuer, boundIssuer: c.issuer, description: "CI identity tokens for Vault snapshots" },
            parent,
          )
        : undefined;
      const role = new vault.jwt.AuthBackendRole(
        `${name}-ci-role`,
        {
          backend: mount ? mount.path.apply((p) => p ?? c.mount) : c.mount,
          roleName: plan.names.ciRole,
          roleType: "jwt",
          userClaim: c.userClaim,
          boundAudiences: [c.audience],
          boundClaimsType: "string",
          boundClaims: c.boundClaims,
          tokenPolicies: snapshotOnly,
          tokenNoDefaultPolicy: true,
          tokenTtl: c.tokenTtlSeconds,
          tokenMaxTtl: c.tokenMaxTtlSeconds,
        },
        parent,
      );
      this.ciRoleName = role.roleName;
    }

    this.registerOutputs({
      snapshotPolicyName: this.snapshotPolicyName,
      restorePolicyName: this.restorePolicyName,
      tokenRoleName: this.tokenRoleName,
      appRoleName: this.appRoleName,
      ciRoleName: this.ciRoleName,
    });
  }
}
