// The per-environment backup program: `pulumi up -s <env>` builds the snapshot bucket, the Vault
// policies and roles, and takes this schedule window's snapshot. Config (see stacks/Pulumi.*.yaml):
//   vault-raft-backup:policy            the backup policy, docs/policy.md (structured, required)
//   vault-raft-backup:vaultToken        secret; token for the snapshot (default: VAULT_TOKEN of the process)
//   vault-raft-backup:takeSnapshot      false builds bucket and access only (default true)
//   vault-raft-backup:localEnvironment  directory of `vrb local up` (dev): its addresses replace the policy's
import { resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { BackupPolicy } from "../../components/index.js";
import { requireEnvironment } from "../../engine/index.js";
import { policyForStack } from "./config.js";

const config = new pulumi.Config("vault-raft-backup");
const localDir = config.get("localEnvironment");
const local = localDir ? requireEnvironment(resolve(localDir)) : undefined;
const policy = policyForStack(config.requireObject<unknown>("policy"), local);

const token = config.getSecret("vaultToken") ?? (local?.keys ? pulumi.secret(local.keys.rootToken) : undefined);
// Against the local cluster, Vault resources go to its first node with its throwaway root token;
// elsewhere the default provider reads `vault:address` and VAULT_TOKEN (e.g. from CI's OIDC login).
const providers = local ? { vault: new vault.Provider("local-vault", { address: policy.cluster.nodes[0], token, skipChildToken: true }) } : undefined;

const backup = new BackupPolicy(
  `${policy.cluster.name}-backup`,
  { policy, snapshot: config.getBoolean("takeSnapshot") === false ? false : { token } },
  providers ? { providers } : undefined,
);

export const cluster = backup.cluster;
export const bucketName = backup.bucketName;
export const bucketArn = backup.bucketArn;
export const prefix = backup.prefix;
export const kmsKeyArn = backup.kmsKeyArn;
export const writerPolicyJson = backup.writerPolicyJson;
export const restorerPolicyJson = backup.restorerPolicyJson;
export const snapshotPolicyName = backup.snapshotPolicyName;
export const restorePolicyName = backup.restorePolicyName;
export const tokenRoleName = backup.tokenRoleName;
export const appRoleName = backup.appRoleName;
export const ciRoleName = backup.ciRoleName;
export const schedule = backup.schedule;
export const window = backup.window;
export const snapshotKey = backup.snapshot?.key;
export const snapshotStatus = backup.snapshot?.status;
