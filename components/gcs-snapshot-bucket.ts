import * as pulumi from "@pulumi/pulumi";
import {
  gcsBucketPlan,
  gcsPrunerPolicyDocument,
  gcsRestorerPolicyDocument,
  gcsWriterPolicyDocument,
  policySchema,
  validatePart,
  type BackupPolicyInput,
  type GcsBucketOptionsInput,
  type GcsBucketPlan,
  type GcsIamPolicyDocument,
} from "../engine/index.js";
import { gcpSdk } from "./cloud-sdks.js";

export interface GcsSnapshotBucketArgs {
  /** A `type: gcs` destination: bucket, prefix, project and (optionally) the CMEK key. */
  destination: BackupPolicyInput["destination"];
  /** What the backup sets on each generation it writes; the bucket is created to allow it. */
  objectLock?: BackupPolicyInput["objectLock"];
  retention?: BackupPolicyInput["retention"];
  /** The lifecycle shared with S3 (`create`, `expireAfterDays`, `noncurrentExpireAfterDays`, `abortIncompleteUploadDays`). */
  bucket?: BackupPolicyInput["bucket"];
  /** Location, project, soft delete, role ids and who gets the roles. */
  gcs?: GcsBucketOptionsInput;
  labels?: Record<string, string>;
}

const bucketPartSchema = policySchema.pick({ destination: true, objectLock: true, retention: true, bucket: true });

/**
 * A Cloud Storage bucket for Raft snapshots that a security reviewer can sign off: uniform access,
 * public access prevention enforced, Object Versioning, per-object retention allowed (set by the
 * backup from `objectLock`), soft delete, an optional CMEK default key, a lifecycle backstop, and
 * custom roles bound on the bucket: a writer that cannot delete snapshots, a restorer that only
 * reads and a pruner (`vrb prune`) that deletes but cannot write, each able to replace the status
 * records and nothing else.
 */
export class GcsSnapshotBucket extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly prefix: string;
  /** Bucket IAM bindings (version 3, with conditions) of the backup writer. */
  readonly writerPolicyJson: pulumi.Output<string>;
  /** Bucket IAM bindings of the restorer. */
  readonly restorerPolicyJson: pulumi.Output<string>;
  /** Bucket IAM bindings of the retention job (`vrb prune`). */
  readonly prunerPolicyJson: pulumi.Output<string>;
  /** The custom roles' names (`projects/P/roles/ID`). */
  readonly roleNames: { writer: pulumi.Output<string>; reader: pulumi.Output<string>; pruner: pulumi.Output<string>; statusRecord: pulumi.Output<string> };
  readonly plan: GcsBucketPlan;

  constructor(name: string, args: GcsSnapshotBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before registering anything: bad input changes nothing.
    const { destination, objectLock, retention, bucket } = args;
    const policy = validatePart(bucketPartSchema, { destination, objectLock, retention, bucket }, [], "GcsSnapshotBucket");
    const plan = gcsBucketPlan({ ...policy, bucket, gcs: args.gcs });
    super("vault-raft-backup:index:GcsSnapshotBucket", name, {}, opts);
    this.plan = plan;
    this.prefix = plan.prefix;
    const parent = { parent: this };
    const gcp = gcpSdk();

    let bucketName: pulumi.Output<string>;
    if (plan.create) {
      const scoped = plan.prefix ? { matchesPrefixes: [plan.prefix] } : {};
      const b = new gcp.storage.Bucket(
        name,
        {
          name: plan.name,
          project: plan.project,
          location: plan.location!,
          uniformBucketLevelAccess: true,
          publicAccessPrevention: "enforced",
          versioning: { enabled: true },
          // Only possible at creation; the backup's per-object retention (objectLock) needs it.
          enableObjectRetention: true,
          softDeletePolicy: { retentionDurationSeconds: plan.softDeleteSeconds },
          ...(plan.kmsKeyName ? { encryption: { defaultKmsKeyName: plan.kmsKeyName } } : {}),
          forceDestroy: false,
          lifecycleRules: [
            // A backstop behind `vrb prune`: a live object past the window becomes noncurrent (versioning keeps it).
            { action: { type: "Delete" }, condition: { age: plan.expireAfterDays, withState: "LIVE", ...scoped } },
            { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: plan.noncurrentExpireAfterDays, withState: "ARCHIVED", ...scoped } },
            // XML-API multipart uploads only; the backup's resumable sessions expire by themselves after a week.
            { action: { type: "AbortIncompleteMultipartUpload" }, condition: { age: plan.abortIncompleteUploadDays } },
          ],
          labels: args.labels,
        },
        // Destroying the stack must never take the snapshots with it.
        { ...parent, retainOnDelete: true },
      );
      bucketName = b.name;
    } else {
      bucketName = pulumi.output(plan.name);
    }
    this.bucketName = bucketName;

    const role = (key: keyof GcsBucketPlan["roles"]) => {
      const r = plan.roles[key];
      return new gcp.projects.IAMCustomRole(
        `${name}-${key}`,
        { project: plan.project, roleId: r.id, title: r.title, description: r.description, permissions: r.permissions, stage: "GA" },
        parent,
      );
    };
    const roles = { writer: role("writer"), reader: role("reader"), pruner: role("pruner"), statusRecord: role("statusRecord") };
    this.roleNames = { writer: roles.writer.name, reader: roles.reader.name, pruner: roles.pruner.name, statusRecord: roles.statusRecord.name };
    const allRoles = Object.values(roles);

    const bind = (who: string, doc: GcsIamPolicyDocument) =>
      doc.bindings.forEach((binding, i) =>
        binding.members.forEach((member, j) => {
          new gcp.storage.BucketIAMMember(
            `${name}-${who}-${i}-${j}`,
            { bucket: bucketName, role: binding.role, member, ...(binding.condition ? { condition: binding.condition } : {}) },
            // The role must exist before anyone is bound to it.
            { ...parent, dependsOn: allRoles },
          );
        }),
      );
    bind("writer", gcsWriterPolicyDocument(plan));
    bind("restorer", gcsRestorerPolicyDocument(plan));
    bind("pruner", gcsPrunerPolicyDocument(plan));

    this.writerPolicyJson = bucketName.apply(() => JSON.stringify(gcsWriterPolicyDocument(plan)));
    this.restorerPolicyJson = bucketName.apply(() => JSON.stringify(gcsRestorerPolicyDocument(plan)));
    this.prunerPolicyJson = bucketName.apply(() => JSON.stringify(gcsPrunerPolicyDocument(plan)));
    this.registerOutputs({
      bucketName: this.bucketName,
      prefix: this.prefix,
      writerPolicyJson: this.writerPolicyJson,
      restorerPolicyJson: this.restorerPolicyJson,
      prunerPolicyJson: this.prunerPolicyJson,
      writerRoleName: this.roleNames.writer,
      readerRoleName: this.roleNames.reader,
      prunerRoleName: this.roleNames.pruner,
      statusRecordRoleName: this.roleNames.statusRecord,
    });
  }
}
