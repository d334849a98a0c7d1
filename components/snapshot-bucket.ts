import type { s3 } from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  bucketPlan,
  bucketPolicyDocument,
  policySchema,
  replicationPolicyDocument,
  replicationTrustPolicyDocument,
  prunerPolicyDocument,
  restorerPolicyDocument,
  validatePart,
  writerPolicyDocument,
  type BackupPolicyInput,
  type BucketPlan,
} from "../engine/index.js";
import { awsSdk } from "./cloud-sdks.js";

export interface SnapshotBucketArgs {
  /** Bucket name, prefix, region and (optionally) an existing KMS key ARN: the policy's `destination`. */
  destination: BackupPolicyInput["destination"];
  /** Default retention of every snapshot; GOVERNANCE for 30 days when absent. */
  objectLock?: BackupPolicyInput["objectLock"];
  retention?: BackupPolicyInput["retention"];
  /** Lifecycle, replication and logging options: the policy's `bucket` section. */
  bucket?: BackupPolicyInput["bucket"];
  tags?: Record<string, string>;
}

/** The parts of the policy schema a bucket is made from, validated with the same messages. */
const bucketPartSchema = policySchema.pick({ destination: true, objectLock: true, retention: true, bucket: true });

interface HardenedBucket {
  bucket: s3.Bucket;
  versioning: s3.BucketVersioning;
}

/**
 * An S3 bucket for Raft snapshots that a security reviewer can sign off: object lock (enabled at
 * creation, default retention), versioning, SSE-KMS with a bucket key and a rotating key, public
 * access blocked, ownership enforced, TLS-only and right-key-only uploads, a lifecycle backstop,
 * optional off-site replication and access logging. Exposes least-privilege IAM documents for the
 * backup writer and the restorer.
 */
export class SnapshotBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;
  readonly prefix: string;
  readonly kmsKeyArn: pulumi.Output<string>;
  /** IAM policy JSON for the identity that takes backups: put + retention + list, never delete. */
  readonly writerPolicyJson: pulumi.Output<string>;
  /** IAM policy JSON for the identity that restores: get + list, and put of the clusters' status objects only (docs/status.md). */
  readonly restorerPolicyJson: pulumi.Output<string>;
  /** The retention job's (`vrb prune`): list versions, delete what the locks allow, write only the status records. */
  readonly prunerPolicyJson: pulumi.Output<string>;
  readonly bucketPolicyJson: pulumi.Output<string>;
  readonly replicaBucketArn?: pulumi.Output<string>;
  /** The resolved plan (defaults filled), for callers that compose this component. */
  readonly plan: BucketPlan;

  constructor(name: string, args: SnapshotBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before registering anything: bad input changes nothing.
    const { destination, objectLock, retention, bucket } = args;
    const plan = bucketPlan(validatePart(bucketPartSchema, { destination, objectLock, retention, bucket }, [], "SnapshotBucket"));
    if (!plan.create) {
      throw new Error("SnapshotBucket: bucket.create is false; use the existing bucket directly (BackupPolicy does) instead of this component");
    }
    super("vault-raft-backup:index:SnapshotBucket", name, {}, opts);
    this.plan = plan;
    this.prefix = plan.prefix;
    const parent = { parent: this };
    const aws = awsSdk();

    const key = plan.kmsKeyArn
      ? undefined
      : new aws.kms.Key(
          `${name}-key`,
          {
            description: `Encrypts the Vault Raft snapshots in ${plan.name}`,
            enableKeyRotation: true,
            deletionWindowInDays: 30,
            region: plan.region,
            tags: args.tags,
          },
          // Deleting this key would make every snapshot unreadable: `pulumi destroy` leaves it.
          { ...parent, retainOnDelete: true },
        );
    this.kmsKeyArn = key ? key.arn : pulumi.output(plan.kmsKeyArn!);

    const primary = this.hardenedBucket(name, {
      bucketName: plan.name,
      region: plan.region,
      kmsKeyArn: this.kmsKeyArn,
      plan,
      tags: args.tags,
    });
    this.bucketName = primary.bucket.bucket;
    this.bucketArn = primary.bucket.arn;

    if (plan.accessLog) {
      new aws.s3.BucketLogging(
        `${name}-logging`,
        { bucket: primary.bucket.id, targetBucket: plan.accessLog.bucket, targetPrefix: `${plan.accessLog.prefix}${plan.name}/`, region: plan.region },
        parent,
      );
    }

    if (plan.replica) this.replicaBucketArn = this.replicate(name, plan, primary, args.tags);

    const scope = pulumi.all([this.bucketArn, this.kmsKeyArn]);
    this.writerPolicyJson = scope.apply(([bucketArn, kmsKeyArn]) => JSON.stringify(writerPolicyDocument({ bucketArn, prefix: plan.prefix, kmsKeyArn })));
    this.restorerPolicyJson = scope.apply(([bucketArn, kmsKeyArn]) => JSON.stringify(restorerPolicyDocument({ bucketArn, prefix: plan.prefix, kmsKeyArn })));
    this.prunerPolicyJson = scope.apply(([bucketArn, kmsKeyArn]) => JSON.stringify(prunerPolicyDocument({ bucketArn, prefix: plan.prefix, kmsKeyArn })));
    this.bucketPolicyJson = scope.apply(([bucketArn, kmsKeyArn]) => JSON.stringify(bucketPolicyDocument({ bucketArn, kmsKeyArn })));

    this.registerOutputs({
      bucketName: this.bucketName,
      bucketArn: this.bucketArn,
      prefix: this.prefix,
      kmsKeyArn: this.kmsKeyArn,
      writerPolicyJson: this.writerPolicyJson,
      restorerPolicyJson: this.restorerPolicyJson,
      prunerPolicyJson: this.prunerPolicyJson,
      replicaBucketArn: this.replicaBucketArn,
    });
  }

  /** One bucket with every protection; used for the primary and for the off-site replica alike. */
  private hardenedBucket(
    name: string,
    a: { bucketName: string; region?: string; kmsKeyArn: pulumi.Input<string>; plan: BucketPlan; tags?: Record<string, string> },
  ): HardenedBucket {
    const parent = { parent: this };
    const aws = awsSdk();
    const { plan } = a;
    // Object lock can only be switched on when the bucket is created.
    const bucket = new aws.s3.Bucket(
      name,
      { bucket: a.bucketName, objectLockEnabled: true, forceDestroy: false, region: a.region, tags: a.tags },
      { ...parent, retainOnDelete: true },
    );
    const versioning = new aws.s3.BucketVersioning(`${name}-versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" }, region: a.region }, parent);
    new aws.s3.BucketObjectLockConfiguration(
      `${name}-lock`,
      {
        bucket: bucket.id,
        objectLockEnabled: "Enabled",
        rule: { defaultRetention: { mode: plan.lock.mode, days: plan.lock.days } },
        region: a.region,
      },
      { ...parent, dependsOn: [versioning] },
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-encryption`,
      {
        bucket: bucket.id,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: a.kmsKeyArn }, bucketKeyEnabled: true }],
        region: a.region,
      },
      parent,
    );
    const publicAccess = new aws.s3.BucketPublicAccessBlock(
      `${name}-public-access`,
      { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true, region: a.region },
      parent,
    );
    const ownership = new aws.s3.BucketOwnershipControls(`${name}-ownership`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" }, region: a.region }, parent);
    new aws.s3.BucketPolicy(
      `${name}-policy`,
      {
        bucket: bucket.id,
        policy: pulumi.all([bucket.arn, a.kmsKeyArn]).apply(([bucketArn, kmsKeyArn]) => JSON.stringify(bucketPolicyDocument({ bucketArn, kmsKeyArn }))),
        region: a.region,
      },
      // S3 rejects a policy while a public-access change is in flight on the same bucket.
      { ...parent, dependsOn: [publicAccess, ownership] },
    );
    const scoped = plan.prefix ? { prefix: plan.prefix } : {};
    new aws.s3.BucketLifecycleConfiguration(
      `${name}-lifecycle`,
      {
        bucket: bucket.id,
        region: a.region,
        rules: [
          {
            // A backstop behind `vrb prune`: nothing outlives the retention window by more than the margin.
            id: "expire-snapshots",
            status: "Enabled",
            filter: scoped,
            expiration: { days: plan.expireAfterDays },
            noncurrentVersionExpiration: { noncurrentDays: plan.noncurrentExpireAfterDays },
            ...(plan.transition
              ? {
                  transitions: [{ days: plan.transition.days, storageClass: plan.transition.storageClass }],
                  noncurrentVersionTransitions: [{ noncurrentDays: 1, storageClass: plan.transition.storageClass }],
                }
              : {}),
          },
          { id: "remove-expired-delete-markers", status: "Enabled", filter: scoped, expiration: { expiredObjectDeleteMarker: true } },
          {
            id: "abort-incomplete-uploads",
            status: "Enabled",
            filter: {},
            abortIncompleteMultipartUpload: { daysAfterInitiation: plan.abortIncompleteUploadDays },
          },
        ],
      },
      { ...parent, dependsOn: [versioning] },
    );
    return { bucket, versioning };
  }

  /** An off-site copy in another region: its own rotating key and the same protections; deletes are not replicated. */
  private replicate(name: string, plan: BucketPlan, primary: HardenedBucket, tags?: Record<string, string>): pulumi.Output<string> {
    const parent = { parent: this };
    const aws = awsSdk();
    const replica = plan.replica!;
    const replicaKey = new aws.kms.Key(
      `${name}-replica-key`,
      {
        description: `Encrypts the off-site copy of the Vault Raft snapshots in ${plan.name}`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        region: replica.region,
        tags,
      },
      { ...parent, retainOnDelete: true },
    );
    const copy = this.hardenedBucket(`${name}-replica`, { bucketName: replica.bucket, region: replica.region, kmsKeyArn: replicaKey.arn, plan, tags });
    const role = new aws.iam.Role(`${name}-replication`, { assumeRolePolicy: JSON.stringify(replicationTrustPolicyDocument()), tags }, parent);
    new aws.iam.RolePolicy(
      `${name}-replication`,
      {
        role: role.id,
        policy: pulumi
          .all([primary.bucket.arn, copy.bucket.arn, this.kmsKeyArn, replicaKey.arn])
          .apply(([sourceBucketArn, destinationBucketArn, sourceKmsKeyArn, destinationKmsKeyArn]) =>
            JSON.stringify(replicationPolicyDocument({ sourceBucketArn, destinationBucketArn, sourceKmsKeyArn, destinationKmsKeyArn })),
          ),
      },
      parent,
    );
    new aws.s3.BucketReplicationConfig(
      `${name}-replication`,
      {
        bucket: primary.bucket.id,
        role: role.arn,
        region: plan.region,
        rules: [
          {
            id: "off-site-copy",
            status: "Enabled",
            filter: plan.prefix ? { prefix: plan.prefix } : {},
            deleteMarkerReplication: { status: "Disabled" },
            sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: "Enabled" } },
            destination: { bucket: copy.bucket.arn, encryptionConfiguration: { replicaKmsKeyId: replicaKey.arn } },
          },
        ],
      },
      // Replication needs versioning on both sides first.
      { ...parent, dependsOn: [primary.versioning, copy.versioning] },
    );
    return copy.bucket.arn;
  }
}
