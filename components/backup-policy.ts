import * as pulumi from "@pulumi/pulumi";
import {
  bucketArnOf,
  bucketPlan,
  restorerPolicyDocument,
  scheduleWindow,
  statusKeyFor,
  validatePolicy,
  writerPolicyDocument,
  type BackupPolicy as BackupPolicyDoc,
  type BackupPolicyInput,
  type BucketPlan,
} from "../engine/index.js";
import { SnapshotBucket } from "./snapshot-bucket.js";
import { VaultBackupAccess } from "./vault-backup-access.js";
import { VaultSnapshot, type VaultSnapshotArgs } from "./vault-snapshot.js";

export interface BackupPolicySnapshotOptions {
  /** Vault token that may read `sys/storage/raft/snapshot` (stored only as a secret); default VAULT_TOKEN of the process. */
  token?: pulumi.Input<string>;
  /** Override the schedule window (default: the window of `schedule.every` containing now). */
  window?: pulumi.Input<string>;
  deadlineMs?: VaultSnapshotArgs["deadlineMs"];
  verifyOnRefresh?: VaultSnapshotArgs["verifyOnRefresh"];
}

export interface BackupPolicyArgs {
  /** The backup policy (Pulumi config `vault-raft-backup:policy`; fields in docs/policy.md); validated before anything is built. */
  policy: BackupPolicyInput;
  /** Take this window's snapshot (a `VaultSnapshot`), or `false` to build only bucket and access. Default: take it. */
  snapshot?: BackupPolicySnapshotOptions | false;
  tags?: Record<string, string>;
}

/**
 * One environment's backup, declared: the snapshot bucket (unless `bucket.create: false`), the
 * Vault policies and roles, and this schedule window's snapshot. Outputs are what CI needs.
 */
export class BackupPolicy extends pulumi.ComponentResource {
  readonly cluster: string;
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  readonly prefix: string;
  readonly kmsKeyArn: pulumi.Output<string | undefined>;
  readonly writerPolicyJson: pulumi.Output<string>;
  readonly restorerPolicyJson: pulumi.Output<string>;
  readonly snapshotPolicyName: pulumi.Output<string>;
  readonly restorePolicyName: pulumi.Output<string>;
  readonly tokenRoleName: pulumi.Output<string>;
  readonly appRoleName?: pulumi.Output<string>;
  readonly ciRoleName?: pulumi.Output<string>;
  readonly schedule: string;
  /** Key of the cluster's status object in the bucket (`vrb status`, `vrb exporter`; docs/status.md). */
  readonly statusKey: string;
  /** The same as s3://BUCKET/KEY. */
  readonly statusLocation: pulumi.Output<string>;
  readonly window: pulumi.Output<string>;
  readonly snapshot?: VaultSnapshot;
  readonly bucket?: SnapshotBucket;
  readonly access: VaultBackupAccess;

  constructor(name: string, args: BackupPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    // One schema for config and CLI; every cross-field rule is checked before anything registers.
    const policy = validatePolicy(args.policy, "BackupPolicy policy");
    const plan = bucketPlan(policy);
    super("vault-raft-backup:index:BackupPolicy", name, {}, opts);
    const parent = { parent: this };
    this.cluster = policy.cluster.name;
    this.prefix = plan.prefix;
    this.schedule = policy.schedule.every;

    this.access = new VaultBackupAccess(`${name}-access`, { cluster: policy.cluster.name, access: policy.access, canaries: policy.verify?.canaries }, parent);
    this.snapshotPolicyName = this.access.snapshotPolicyName;
    this.restorePolicyName = this.access.restorePolicyName;
    this.tokenRoleName = this.access.tokenRoleName;
    this.appRoleName = this.access.appRoleName;
    this.ciRoleName = this.access.ciRoleName;

    if (plan.create) {
      this.bucket = new SnapshotBucket(
        `${name}-bucket`,
        { destination: policy.destination, objectLock: policy.objectLock, retention: policy.retention, bucket: policy.bucket, tags: args.tags },
        parent,
      );
      this.bucketName = this.bucket.bucketName;
      this.bucketArn = this.bucket.bucketArn;
      this.kmsKeyArn = this.bucket.kmsKeyArn;
      this.writerPolicyJson = this.bucket.writerPolicyJson;
      this.restorerPolicyJson = this.bucket.restorerPolicyJson;
    } else {
      // An existing bucket (e.g. the local environment's): describe it, manage nothing.
      const scope = { bucketArn: bucketArnOf(plan.name), prefix: plan.prefix, kmsKeyArn: plan.kmsKeyArn };
      this.bucketName = pulumi.output(plan.name);
      this.bucketArn = pulumi.output(scope.bucketArn);
      this.kmsKeyArn = pulumi.output(plan.kmsKeyArn);
      this.writerPolicyJson = pulumi.output(JSON.stringify(writerPolicyDocument(scope)));
      this.restorerPolicyJson = pulumi.output(JSON.stringify(restorerPolicyDocument(scope)));
    }

    this.statusKey = statusKeyFor(plan.prefix, policy.cluster.name);
    this.statusLocation = this.bucketName.apply((bucket) => `s3://${bucket}/${this.statusKey}`);

    const snap = args.snapshot === false ? undefined : (args.snapshot ?? {});
    this.window = pulumi.output(snap?.window ?? scheduleWindow(policy.schedule.every).id);
    if (snap) {
      this.snapshot = new VaultSnapshot(
        `${name}-snapshot`,
        {
          policy: snapshotPolicyOf(policy, plan, this.kmsKeyArn),
          token: snap.token,
          window: this.window,
          deadlineMs: snap.deadlineMs,
          verifyOnRefresh: snap.verifyOnRefresh,
        },
        // The bucket must be locked and encrypted before the first snapshot lands in it.
        { ...parent, dependsOn: this.bucket ? [this.bucket] : [] },
      );
    }

    this.registerOutputs({
      bucketName: this.bucketName,
      bucketArn: this.bucketArn,
      prefix: this.prefix,
      kmsKeyArn: this.kmsKeyArn,
      writerPolicyJson: this.writerPolicyJson,
      restorerPolicyJson: this.restorerPolicyJson,
      snapshotPolicyName: this.snapshotPolicyName,
      restorePolicyName: this.restorePolicyName,
      tokenRoleName: this.tokenRoleName,
      appRoleName: this.appRoleName,
      ciRoleName: this.ciRoleName,
      schedule: this.schedule,
      statusKey: this.statusKey,
      statusLocation: this.statusLocation,
      window: this.window,
      snapshotKey: this.snapshot?.key,
    });
  }
}

/**
 * What the snapshot needs of the policy: no Pulumi-only sections (they would only bloat its
 * state), the bucket's resolved lock so every snapshot gets explicit retention, and the bucket's
 * KMS key so uploads name it (the bucket policy denies any other key).
 */
function snapshotPolicyOf(policy: BackupPolicyDoc, plan: BucketPlan, kmsKeyArn: pulumi.Output<string | undefined>): pulumi.Output<BackupPolicyInput> {
  const { bucket: _bucket, access: _access, ...forBackup } = policy;
  return kmsKeyArn.apply((key) => ({
    ...forBackup,
    destination: { ...forBackup.destination, ...(key ? { kmsKeyId: key } : {}) },
    objectLock: plan.create ? plan.lock : forBackup.objectLock,
  }));
}
