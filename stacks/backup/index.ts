// The per-environment backup program: `pulumi up -s <env>` builds the snapshot bucket, the Vault
// policies and roles, and takes this schedule window's snapshot. Config (see stacks/Pulumi.*.yaml):
//   vault-raft-backup:policy            the backup policy, docs/policy.md (structured, required)
//   vault-raft-backup:vaultToken        secret; token for the snapshot (default: VAULT_TOKEN of the process)
//   vault-raft-backup:takeSnapshot      false builds bucket and access only (default true)
//   vault-raft-backup:localEnvironment  directory of `vrb local up` (dev): its addresses replace the policy's
//   vault-raft-backup:manage            all (default) | snapshotsOnly: only the snapshot; bucket and Vault roles are
//                                       managed elsewhere (needs neither the AWS nor the Vault Pulumi provider)
//   vault-raft-backup:window            schedule window id to take (default: the window containing now)
//   vault-raft-backup:gcs / :azure      destination.type gcs / azure: the bucket's or container's settings
//                                       (BackupPolicy's gcs / azure arguments; azure is required there)
import { resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { vaultSdk } from "../../components/cloud-sdks.js";
import { BackupPolicy, VaultSnapshot } from "../../components/index.js";
import { destinationContainerOf, scheduleWindow, statusKeyFor } from "../../engine/index.js";
import { requireEnvironment } from "../../devenv/environment.js";
import { manageMode, policyForStack, storeOptionsConfig, windowConfig } from "./config.js";

const config = new pulumi.Config("vault-raft-backup");
const localDir = config.get("localEnvironment");
// Relative paths in stack config are relative to the project (where Pulumi.yaml is): Pulumi runs
// the program in its own directory (dist/stacks/backup), not where `pulumi` was started.
const projectDir = pulumi.runtime.getRootDirectory() || process.cwd();
const local = localDir ? requireEnvironment(resolve(projectDir, localDir)) : undefined;
const rawPolicy = config.requireObject<unknown>("policy");
const policy = policyForStack(rawPolicy, local);
const takeSnapshot = config.getBoolean("takeSnapshot") !== false;
const manage = manageMode(config.get("manage"), rawPolicy, takeSnapshot);
const windowOverride = windowConfig(config.get("window"));
const storeOptions = storeOptionsConfig(manage, config.getObject<unknown>("gcs"), config.getObject<unknown>("azure"));

const token = config.getSecret("vaultToken") ?? (local?.keys ? pulumi.secret(local.keys.rootToken) : undefined);
// Against the local cluster, Vault resources go to its first node with its throwaway root token;
// elsewhere the default provider reads `vault:address` and VAULT_TOKEN (e.g. from CI's OIDC login).
const providers = local && manage === "all" ? { vault: new (vaultSdk().Provider)("local-vault", { address: policy.cluster.nodes[0], token, skipChildToken: true }) } : undefined;

const backup =
  manage === "all"
    ? new BackupPolicy(
        `${policy.cluster.name}-backup`,
        { policy, ...storeOptions, snapshot: takeSnapshot ? { token, window: windowOverride } : false },
        providers ? { providers } : undefined,
      )
    : undefined;

// snapshotsOnly: the bucket exists and the Vault roles are someone else's; only the snapshot is
// managed, with the policy's own destination and lock (the Pulumi-only sections left out).
const { bucket: _bucket, access: _access, ...forBackup } = policy;
const onlySnapshot =
  manage === "snapshotsOnly"
    ? new VaultSnapshot(`${policy.cluster.name}-snapshot`, { policy: forBackup, token, window: windowOverride ?? scheduleWindow(policy.schedule.every).id })
    : undefined;
const snapshot = backup ? backup.snapshot : onlySnapshot;

export const cluster = policy.cluster.name;
export const manages = manage;
export const storeType = policy.destination.type ?? "s3";
// The container alone on azure (its account is accountName), as BackupPolicy exports it.
export const bucketName = backup?.bucketName ?? (policy.destination.type === "azure" ? policy.destination.container : destinationContainerOf(policy.destination));
export const accountName = policy.destination.type === "azure" ? policy.destination.accountName : undefined;
// S3 only: the other stores have no ARN, and name their keys in the destination.
export const bucketArn = storeType === "s3" ? backup?.bucketArn : undefined;
export const prefix = policy.destination.prefix;
export const kmsKeyArn = storeType === "s3" ? backup?.kmsKeyArn : undefined;
export const writerPolicyJson = backup?.writerPolicyJson;
export const restorerPolicyJson = backup?.restorerPolicyJson;
export const prunerPolicyJson = backup?.prunerPolicyJson;
export const snapshotPolicyName = backup?.snapshotPolicyName;
export const restorePolicyName = backup?.restorePolicyName;
export const tokenRoleName = backup?.tokenRoleName;
export const appRoleName = backup?.appRoleName;
export const ciRoleName = backup?.ciRoleName;
export const schedule = policy.schedule.every;
export const statusKey = statusKeyFor(policy.destination.prefix, policy.cluster.name);
export const statusLocation = backup?.statusLocation;
export const window = backup?.window ?? onlySnapshot?.window;
export const snapshotKey = snapshot?.key;
export const snapshotStatus = snapshot?.status;
