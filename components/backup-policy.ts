import { resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  ConfigError,
  azureContainerPlan,
  azureRolesOf,
  bucketArnOf,
  bucketPlan,
  destinationContainerOf,
  gcsBucketPlan,
  gcsPrunerPolicyDocument,
  gcsRestorerPolicyDocument,
  gcsWriterPolicyDocument,
  prunerPolicyDocument,
  restorerPolicyDocument,
  scheduleWindow,
  statusKeyFor,
  validatePolicy,
  writerPolicyDocument,
  type AzureContainerOptionsInput,
  type AzureContainerPlan,
  type BackupPolicy as BackupPolicyDoc,
  type BackupPolicyInput,
  type BucketPlan,
  type GcsBucketOptionsInput,
  type StoreType,
} from "../engine/index.js";
import { AzureSnapshotContainer } from "./azure-snapshot-container.js";
import { GcsSnapshotBucket } from "./gcs-snapshot-bucket.js";
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
  /** `destination.type: gcs` only: location, project, soft delete, role ids and members (`GcsSnapshotBucket`'s `gcs`). */
  gcs?: GcsBucketOptionsInput;
  /** `destination.type: azure` only, and required there: subscription, resource group, account settings, key and principals (`AzureSnapshotContainer`'s `azure`). */
  azure?: AzureContainerOptionsInput;
  /** Tags of the created resources (on gcs: the bucket's labels, so Cloud Storage's label rules apply). */
  tags?: Record<string, string>;
}

/**
 * One environment's backup, declared: the destination's store (an S3 bucket, a Cloud Storage
 * bucket or an Azure container; unless `bucket.create: false`, and never for a directory), the
 * Vault policies and roles, and this schedule window's snapshot. Outputs are what CI needs.
 */
export class BackupPolicy extends pulumi.ComponentResource {
  readonly cluster: string;
  /** The destination's store type: `s3`, `gcs`, `azure` or `file`. */
  readonly storeType: StoreType;
  /** The bucket (s3, gcs), the container (azure; the account is `accountName`) or the directory (file). */
  readonly bucketName: pulumi.Output<string>;
  /** The storage account (azure only). */
  readonly accountName?: pulumi.Output<string>;
  /** S3 only: the bucket's ARN; `''` for the other stores. */
  readonly bucketArn: pulumi.Output<string>;
  readonly prefix: string;
  /** S3 only: the bucket's KMS key; undefined for the other stores (their keys are in the policy's destination). */
  readonly kmsKeyArn: pulumi.Output<string | undefined>;
  /** What the backup job is granted: the IAM policy (s3), the bucket's IAM bindings (gcs), the roles and assignments (azure); `''` for a directory. */
  readonly writerPolicyJson: pulumi.Output<string>;
  /** What the restorer is granted, in the same form as `writerPolicyJson`. */
  readonly restorerPolicyJson: pulumi.Output<string>;
  /** What the retention job (`vrb prune`) is granted, in the same form: it deletes, the writer may not. */
  readonly prunerPolicyJson: pulumi.Output<string>;
  readonly snapshotPolicyName: pulumi.Output<string>;
  readonly restorePolicyName: pulumi.Output<string>;
  readonly tokenRoleName: pulumi.Output<string>;
  readonly appRoleName?: pulumi.Output<string>;
  readonly ciRoleName?: pulumi.Output<string>;
  readonly schedule: string;
  /** Key of the cluster's status object in the store (`vrb status`, `vrb exporter`; docs/status.md). */
  readonly statusKey: string;
  /** The same as the CLI writes it: s3://BUCKET/KEY, gs://BUCKET/KEY, azure://ACCOUNT/CONTAINER/KEY or file:///DIR/KEY. */
  readonly statusLocation: pulumi.Output<string>;
  readonly window: pulumi.Output<string>;
  readonly snapshot?: VaultSnapshot;
  /** The S3 bucket, when this component created one. */
  readonly bucket?: SnapshotBucket;
  /** The Cloud Storage bucket, when this component created one. */
  readonly gcsBucket?: GcsSnapshotBucket;
  /** The Azure container (and account), when this component created them. */
  readonly azureContainer?: AzureSnapshotContainer;
  readonly access: VaultBackupAccess;

  constructor(name: string, args: BackupPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    // One schema for config and CLI; every cross-field rule is checked before anything registers.
    const policy = validatePolicy(args.policy, "BackupPolicy policy");
    const store = storePlanOf(policy, args);
    super("vault-raft-backup:index:BackupPolicy", name, {}, opts);
    const parent = { parent: this };
    this.cluster = policy.cluster.name;
    this.storeType = store.type;
    this.prefix = policy.destination.prefix;
    this.schedule = policy.schedule.every;

    this.access = new VaultBackupAccess(`${name}-access`, { cluster: policy.cluster.name, access: policy.access, canaries: policy.verify?.canaries }, parent);
    this.snapshotPolicyName = this.access.snapshotPolicyName;
    this.restorePolicyName = this.access.restorePolicyName;
    this.tokenRoleName = this.access.tokenRoleName;
    this.appRoleName = this.access.appRoleName;
    this.ciRoleName = this.access.ciRoleName;
    this.statusKey = statusKeyFor(this.prefix, policy.cluster.name);

    // Only S3 has an ARN and a key the component makes; the others name theirs in the destination.
    this.bucketArn = pulumi.output("");
    this.kmsKeyArn = pulumi.output(undefined);
    let created: pulumi.Resource | undefined;
    switch (store.type) {
      case "s3": {
        const { plan } = store;
        if (plan.create) {
          this.bucket = new SnapshotBucket(
            `${name}-bucket`,
            { destination: policy.destination, objectLock: policy.objectLock, retention: policy.retention, bucket: policy.bucket, tags: args.tags },
            parent,
          );
          created = this.bucket;
          this.bucketName = this.bucket.bucketName;
          this.bucketArn = this.bucket.bucketArn;
          this.kmsKeyArn = this.bucket.kmsKeyArn;
          this.writerPolicyJson = this.bucket.writerPolicyJson;
          this.restorerPolicyJson = this.bucket.restorerPolicyJson;
          this.prunerPolicyJson = this.bucket.prunerPolicyJson;
        } else {
          // An existing bucket (e.g. the local environment's): describe it, manage nothing.
          const scope = { bucketArn: bucketArnOf(plan.name), prefix: plan.prefix, kmsKeyArn: plan.kmsKeyArn };
          this.bucketName = pulumi.output(plan.name);
          this.bucketArn = pulumi.output(scope.bucketArn);
          this.kmsKeyArn = pulumi.output(plan.kmsKeyArn);
          this.writerPolicyJson = pulumi.output(JSON.stringify(writerPolicyDocument(scope)));
          this.restorerPolicyJson = pulumi.output(JSON.stringify(restorerPolicyDocument(scope)));
          this.prunerPolicyJson = pulumi.output(JSON.stringify(prunerPolicyDocument(scope)));
        }
        this.statusLocation = this.bucketName.apply((bucket) => `s3://${bucket}/${this.statusKey}`);
        break;
      }
      case "gcs": {
        const { plan } = store;
        if (plan.create) {
          this.gcsBucket = new GcsSnapshotBucket(
            `${name}-bucket`,
            { destination: policy.destination, objectLock: policy.objectLock, retention: policy.retention, bucket: policy.bucket, gcs: args.gcs, labels: args.tags },
            parent,
          );
          created = this.gcsBucket;
          this.bucketName = this.gcsBucket.bucketName;
          this.writerPolicyJson = this.gcsBucket.writerPolicyJson;
          this.restorerPolicyJson = this.gcsBucket.restorerPolicyJson;
          this.prunerPolicyJson = this.gcsBucket.prunerPolicyJson;
        } else {
          // An existing bucket: its bindings are described for whoever grants them, not made here.
          this.bucketName = pulumi.output(plan.name);
          this.writerPolicyJson = pulumi.output(JSON.stringify(gcsWriterPolicyDocument(plan)));
          this.restorerPolicyJson = pulumi.output(JSON.stringify(gcsRestorerPolicyDocument(plan)));
          this.prunerPolicyJson = pulumi.output(JSON.stringify(gcsPrunerPolicyDocument(plan)));
        }
        this.statusLocation = this.bucketName.apply((bucket) => `gs://${bucket}/${this.statusKey}`);
        break;
      }
      case "azure": {
        const { plan } = store;
        if (plan.account.create) {
          this.azureContainer = new AzureSnapshotContainer(
            `${name}-container`,
            { destination: policy.destination, objectLock: policy.objectLock, retention: policy.retention, bucket: policy.bucket, azure: store.options, tags: args.tags },
            parent,
          );
          created = this.azureContainer;
          this.accountName = this.azureContainer.accountName;
          this.bucketName = this.azureContainer.containerName;
          this.writerPolicyJson = this.azureContainer.writerRoleJson;
          this.restorerPolicyJson = this.azureContainer.restorerRoleJson;
          this.prunerPolicyJson = this.azureContainer.prunerRoleJson;
        } else {
          // An existing account and container: the roles are described for whoever assigns them, not made here.
          this.accountName = pulumi.output(plan.account.name);
          this.bucketName = pulumi.output(plan.container);
          this.writerPolicyJson = pulumi.output(azureRolesJson(plan, "writer"));
          this.restorerPolicyJson = pulumi.output(azureRolesJson(plan, "restorer"));
          this.prunerPolicyJson = pulumi.output(azureRolesJson(plan, "pruner"));
        }
        this.statusLocation = pulumi.all([this.accountName, this.bucketName]).apply(([account, container]) => `azure://${account}/${container}/${this.statusKey}`);
        break;
      }
      case "file": {
        // The directory is the operator's (a mount, an appliance's share): nothing to create or grant here.
        this.bucketName = pulumi.output(store.directory);
        this.writerPolicyJson = pulumi.output("");
        this.restorerPolicyJson = pulumi.output("");
        this.prunerPolicyJson = pulumi.output("");
        this.statusLocation = pulumi.output(`file://${store.directory === "/" ? "" : store.directory}/${this.statusKey}`);
        break;
      }
    }

    const snap = args.snapshot === false ? undefined : (args.snapshot ?? {});
    this.window = pulumi.output(snap?.window ?? scheduleWindow(policy.schedule.every).id);
    if (snap) {
      this.snapshot = new VaultSnapshot(
        `${name}-snapshot`,
        {
          policy: store.type === "s3" ? s3SnapshotPolicyOf(policy, store.plan, this.kmsKeyArn) : pulumi.output(forBackup(policy)),
          token: snap.token,
          window: this.window,
          deadlineMs: snap.deadlineMs,
          verifyOnRefresh: snap.verifyOnRefresh,
        },
        // The store must be locked, encrypted and its roles granted before the first snapshot lands in it.
        { ...parent, dependsOn: created ? [created] : [] },
      );
    }

    this.registerOutputs({
      storeType: this.storeType,
      bucketName: this.bucketName,
      accountName: this.accountName,
      bucketArn: this.bucketArn,
      prefix: this.prefix,
      kmsKeyArn: this.kmsKeyArn,
      writerPolicyJson: this.writerPolicyJson,
      restorerPolicyJson: this.restorerPolicyJson,
      prunerPolicyJson: this.prunerPolicyJson,
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

/** The destination's store, resolved by its own plan: every rule checked before anything registers. */
type StorePlan =
  | { type: "s3"; plan: BucketPlan }
  | { type: "gcs"; plan: ReturnType<typeof gcsBucketPlan> }
  | { type: "azure"; plan: AzureContainerPlan; options: AzureContainerOptionsInput }
  | { type: "file"; directory: string };

function refuse(field: string, text: string): never {
  throw new ConfigError(`BackupPolicy: ${field} ${text}`, { field });
}

function storePlanOf(policy: BackupPolicyDoc, args: BackupPolicyArgs): StorePlan {
  const type: StoreType = policy.destination.type ?? "s3";
  if (args.gcs !== undefined && type !== "gcs") {
    refuse("gcs", `is set but destination.type is '${type}': it configures a Cloud Storage bucket; remove it, or set destination.type: gcs`);
  }
  if (args.azure !== undefined && type !== "azure") {
    refuse("azure", `is set but destination.type is '${type}': it configures an Azure Blob container; remove it, or set destination.type: azure`);
  }
  switch (type) {
    case "s3":
      return { type, plan: bucketPlan(policy) };
    case "gcs":
      for (const [key, value] of Object.entries(args.tags ?? {})) {
        // The tags become the bucket's labels, which Cloud Storage refuses at `pulumi up` unless they look like this.
        if (!/^[a-z][a-z0-9_-]{0,62}$/.test(key)) {
          refuse(
            `tags.${key}`,
            "is not a Cloud Storage label key (lowercase letters, digits, '_' and '-', starting with a letter, at most 63): the tags become the bucket's labels; rename it",
          );
        }
        if (!/^[a-z0-9_-]{0,63}$/.test(value)) {
          refuse(
            `tags.${key}`,
            `('${value}') is not a Cloud Storage label value (lowercase letters, digits, '_' and '-', at most 63): the tags become the bucket's labels; change it`,
          );
        }
      }
      return { type, plan: gcsBucketPlan({ ...policy, gcs: args.gcs }) };
    case "azure":
      if (args.azure === undefined) {
        refuse(
          "azure",
          "is required for a type: azure destination: pass BackupPolicy's `azure` argument with subscriptionId and resourceGroupName (and location when the account is created; docs/storage-azure.md#pulumi-azuresnapshotcontainer)",
        );
      }
      return { type, plan: azureContainerPlan({ ...policy, azure: args.azure }), options: args.azure };
    case "file": {
      if (policy.objectLock) {
        refuse("objectLock", "is set but a file destination cannot lock objects (a directory has no immutability); remove objectLock, or store the snapshots on s3, gcs or azure");
      }
      // Nothing is made for a directory, so a bucket setting would be silently ignored; `create: false` says just that.
      const extra = Object.entries(args.policy.bucket ?? {}).find(([k, v]) => !(k === "create" && v === false));
      if (extra) refuse(`bucket.${extra[0]}`, "has no effect on a file destination: the directory is the operator's (it must exist), nothing is created or managed; remove it");
      // As the store names it (FileStore's container), so statusLocation is the CLI's file:// URL.
      return { type, directory: resolve(destinationContainerOf(policy.destination)) };
    }
  }
}

/** The roles and assignments of one side, as AzureSnapshotContainer exports them for a container it made. */
function azureRolesJson(plan: AzureContainerPlan, who: "writer" | "restorer" | "pruner"): string {
  return JSON.stringify(azureRolesOf(plan, who));
}

/** The policy without its Pulumi-only sections (they would only bloat the snapshot's state). */
function forBackup(policy: BackupPolicyDoc): BackupPolicyInput {
  const { bucket: _bucket, access: _access, ...rest } = policy;
  return rest;
}

/**
 * What the snapshot needs of an S3 policy: the bucket's resolved lock so every snapshot gets
 * explicit retention, and the bucket's KMS key so uploads name it (the bucket policy denies any
 * other key). Cloud Storage and Azure take the policy as it is: their writer may set a retention
 * only when the policy's objectLock asks for one, and their keys are named in the destination.
 */
function s3SnapshotPolicyOf(policy: BackupPolicyDoc, plan: BucketPlan, kmsKeyArn: pulumi.Output<string | undefined>): pulumi.Output<BackupPolicyInput> {
  const rest = forBackup(policy);
  return kmsKeyArn.apply((key) => ({
    ...rest,
    destination: { ...rest.destination, ...(key ? { kmsKeyId: key } : {}) },
    objectLock: plan.create ? plan.lock : rest.objectLock,
  }));
}
