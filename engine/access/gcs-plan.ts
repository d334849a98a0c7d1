import { z } from "zod";
import { ConfigError } from "../errors.js";
import { bucketOptionsSchema, validatePart, type BackupPolicy, type BucketOptions, type BucketOptionsInput } from "../policy.js";
import { gcsDestinationOf } from "../storage/destination.js";
import { DEFAULT_LOCK, EXPIRY_MARGIN_DAYS, type LockMode } from "./plan.js";

/**
 * What the Pulumi `GcsSnapshotBucket` builds for a `type: gcs` destination, resolved from the policy
 * (defaults filled, cross-field rules checked, errors naming the field), and the IAM documents it
 * binds. No Pulumi here: the component renders exactly this, and the tests read it without a cloud.
 *
 * Retention is Cloud Storage's per-object retention (Object Retention Lock), not a bucket retention
 * policy: the backup sets `objectLock` on each generation it writes (docs/storage-gcs.md). A bucket
 * retention policy would be the wrong tool here twice over: Cloud Storage refuses it on a bucket with
 * Object Versioning, and it keeps every object from being *replaced* until it is as old as the
 * period, so the cluster's status record (rewritten by every run, and holding the backup lease) could
 * be written once per retention period only.
 */

/** GCS-only settings of the component (the policy's `bucket:` section holds the lifecycle shared with S3). */
export const gcsBucketOptionsSchema = z
  .object({
    location: z
      .string()
      .regex(/^[A-Za-z0-9-]{2,40}$/, "must be a Cloud Storage location such as 'EUROPE-WEST1', 'EU' or 'NAM4'")
      .optional()
      .describe("Where the bucket is created (required when it is created)."),
    project: z.string().min(1).optional().describe("Project of the bucket and of the custom roles (default: destination.projectId)."),
    softDeleteDays: z
      .number()
      .int()
      .refine((d) => d === 0 || (d >= 7 && d <= 90), "must be 0 (off) or between 7 and 90 days (Cloud Storage's limits)")
      .default(7)
      .describe("Deleted objects stay restorable this many days (soft delete)."),
    roleIdPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.]{1,40}$/, "must be letters, digits, '_' and '.', at most 40 characters, e.g. 'vrbProd'")
      .default("vrb")
      .describe("Prefix of the custom role ids (one project can hold the roles of several stacks)."),
    writerMembers: z
      .array(z.string().regex(/^(serviceAccount|user|group|domain|principal|principalSet):.+$/, "must be an IAM member like 'serviceAccount:vrb@P.iam.gserviceaccount.com'"))
      .default([])
      .describe("Who takes backups: bound to the writer and status-record roles on the bucket."),
    restorerMembers: z
      .array(
        z.string().regex(/^(serviceAccount|user|group|domain|principal|principalSet):.+$/, "must be an IAM member like 'serviceAccount:vrb-restore@P.iam.gserviceaccount.com'"),
      )
      .default([])
      .describe("Who restores and drills: bound to the reader and status-record roles on the bucket."),
    prunerMembers: z
      .array(z.string().regex(/^(serviceAccount|user|group|domain|principal|principalSet):.+$/, "must be an IAM member like 'serviceAccount:vrb-prune@P.iam.gserviceaccount.com'"))
      .default([])
      .describe("Who applies retention (vrb prune): bound to the pruner and status-record roles on the bucket."),
  })
  .strict();

export type GcsBucketOptionsInput = z.input<typeof gcsBucketOptionsSchema>;

export interface GcsCustomRole {
  /** The role id in the project (`projects/<project>/roles/<id>`). */
  id: string;
  title: string;
  description: string;
  permissions: string[];
}

export interface GcsIamCondition {
  title: string;
  description: string;
  /** A CEL expression over `resource.name` / `resource.type`, the only attributes Cloud Storage gives conditions. */
  expression: string;
}

export interface GcsIamBinding {
  role: string;
  members: string[];
  condition?: GcsIamCondition;
}

/** A bucket IAM policy fragment, as `gcloud storage buckets get-iam-policy` shows one (version 3: conditions). */
export interface GcsIamPolicyDocument {
  version: 3;
  bindings: GcsIamBinding[];
}

export interface GcsBucketPlan {
  /** false: the bucket exists; only the roles and bindings are made. */
  create: boolean;
  name: string;
  prefix: string;
  project?: string;
  location?: string;
  /** What the backup sets on every generation it writes; the bucket only allows it (object retention). */
  lock?: { mode: LockMode; days: number };
  softDeleteSeconds: number;
  expireAfterDays: number;
  noncurrentExpireAfterDays: number;
  abortIncompleteUploadDays: number;
  kmsKeyName?: string;
  roles: { writer: GcsCustomRole; reader: GcsCustomRole; pruner: GcsCustomRole; statusRecord: GcsCustomRole };
  writerMembers: string[];
  restorerMembers: string[];
  prunerMembers: string[];
}

/** Fields of the policy's `bucket:` section that only S3 has. */
const S3_ONLY_BUCKET_FIELDS = ["transition", "replicaRegion", "replicaBucket", "accessLog"] as const;

function fail(field: string, text: string): never {
  throw new ConfigError(`policy: ${field} ${text}`, { field });
}

/**
 * The lifecycle shared by the GCS and Azure plans: the `bucket:` section minus what only S3 has,
 * with the same expiry rules as bucketPlan.
 */
export function sharedLifecyclePlan(
  policy: Pick<BackupPolicy, "objectLock" | "retention"> & { bucket?: BucketOptionsInput },
  store: string,
): Pick<BucketOptions, "create" | "noncurrentExpireAfterDays" | "abortIncompleteUploadDays"> & { expireAfterDays: number } {
  const opts = validatePart(bucketOptionsSchema, policy.bucket ?? {}, ["bucket"]);
  for (const k of S3_ONLY_BUCKET_FIELDS) {
    if (opts[k] !== undefined) fail(`bucket.${k}`, `is S3-only and has no effect on ${store}; remove it (docs/pulumi.md)`);
  }
  if (!opts.create && opts.expireAfterDays !== undefined) {
    fail("bucket.expireAfterDays", "has no effect with bucket.create: false (the lifecycle is not managed here); remove it");
  }
  // Without objectLock the expiry still waits as long as S3's default lock would, so the backstop never undercuts `vrb prune`.
  const lockDays = policy.objectLock?.days ?? DEFAULT_LOCK.days;
  const maxAge = policy.retention.maxAgeDays ?? 0;
  const expireAfterDays = opts.expireAfterDays ?? Math.max(lockDays, maxAge) + EXPIRY_MARGIN_DAYS;
  if (expireAfterDays < lockDays) {
    fail("bucket.expireAfterDays", `(${expireAfterDays}) must be at least objectLock.days (${lockDays}): a locked snapshot cannot expire; raise it or leave it unset`);
  }
  if (expireAfterDays < maxAge) {
    fail("bucket.expireAfterDays", `(${expireAfterDays}) must be at least retention.maxAgeDays (${maxAge}), or the lifecycle deletes snapshots retention keeps`);
  }
  return { create: opts.create, expireAfterDays, noncurrentExpireAfterDays: opts.noncurrentExpireAfterDays, abortIncompleteUploadDays: opts.abortIncompleteUploadDays };
}

export function gcsBucketPlan(
  policy: Pick<BackupPolicy, "destination" | "objectLock" | "retention"> & { bucket?: BucketOptionsInput; gcs?: GcsBucketOptionsInput },
): GcsBucketPlan {
  const destination = gcsDestinationOf(policy.destination, "the GcsSnapshotBucket component (a Cloud Storage bucket)");
  const lifecycle = sharedLifecyclePlan(policy, "Cloud Storage");
  const opts = validatePart(gcsBucketOptionsSchema, policy.gcs ?? {}, ["gcs"]);
  const project = opts.project ?? destination.projectId;
  if (!project) fail("gcs.project", "is required (or destination.projectId): the custom roles are created in a project; name it");
  if (lifecycle.create && !opts.location) fail("gcs.location", "is required when the bucket is created; name a location such as 'EUROPE-WEST1'");
  if (!lifecycle.create && opts.location) fail("gcs.location", "has no effect with bucket.create: false (the bucket exists); remove it");
  const p = opts.roleIdPrefix;
  const lock = policy.objectLock ? { mode: policy.objectLock.mode, days: policy.objectLock.days } : undefined;
  return {
    create: lifecycle.create,
    name: destination.bucket,
    prefix: destination.prefix,
    project,
    location: opts.location,
    lock,
    softDeleteSeconds: opts.softDeleteDays * 86400,
    expireAfterDays: lifecycle.expireAfterDays,
    noncurrentExpireAfterDays: lifecycle.noncurrentExpireAfterDays,
    abortIncompleteUploadDays: lifecycle.abortIncompleteUploadDays,
    kmsKeyName: destination.kmsKeyName,
    roles: {
      writer: {
        id: `${p}SnapshotWriter`,
        title: "vrb snapshot writer",
        description: "vault-raft-backup: write and read back snapshots, never delete them",
        permissions: [
          "storage.buckets.get",
          "storage.objects.create",
          "storage.objects.get",
          "storage.objects.list",
          // Setting a retention is an object update; granted only when the policy asks the backup to lock.
          ...(lock ? ["storage.objects.setRetention", "storage.objects.update"] : []),
        ],
      },
      reader: {
        id: `${p}SnapshotReader`,
        title: "vrb snapshot reader",
        description: "vault-raft-backup: list and read snapshots (restore, drill, verify, status)",
        permissions: ["storage.buckets.get", "storage.objects.get", "storage.objects.list"],
      },
      pruner: {
        id: `${p}SnapshotPruner`,
        title: "vrb snapshot pruner",
        // No create, no setRetention: it deletes what retention drops and the object retention allows, and writes no snapshot.
        description: "vault-raft-backup: list, read and delete snapshots past retention (vrb prune); never write or unlock them",
        permissions: ["storage.buckets.get", "storage.objects.get", "storage.objects.list", "storage.objects.delete"],
      },
      statusRecord: {
        id: `${p}StatusRecordWriter`,
        title: "vrb status record writer",
        // Cloud Storage counts replacing an object as deleting it, so rewriting the record needs delete.
        description: "vault-raft-backup: replace the clusters' status records (vrb-status.json) only; bound with a condition",
        permissions: ["storage.objects.create", "storage.objects.delete"],
      },
    },
    writerMembers: opts.writerMembers,
    restorerMembers: opts.restorerMembers,
    prunerMembers: opts.prunerMembers,
  };
}

const objectsOf = (plan: Pick<GcsBucketPlan, "name">) => `projects/_/buckets/${plan.name}/objects/`;

/**
 * Object permissions limited to the prefix. `storage.objects.list` and `storage.buckets.get` are
 * checked against the bucket itself, so the bucket has to pass the condition too: listing cannot be
 * narrowed to a prefix by a condition (a Cloud Storage limit).
 */
export function gcsPrefixCondition(plan: Pick<GcsBucketPlan, "name" | "prefix">): GcsIamCondition | undefined {
  if (!plan.prefix) return undefined;
  return {
    title: "vrb-prefix-only",
    description: `Objects under ${plan.prefix} (listing covers the whole bucket)`,
    expression: `resource.type == "storage.googleapis.com/Bucket" || resource.name.startsWith("${objectsOf(plan)}${plan.prefix}")`,
  };
}

/** The status records under the prefix (`<prefix><cluster>/vrb-status.json`): the only objects anyone here may replace. */
export function gcsStatusRecordCondition(plan: Pick<GcsBucketPlan, "name" | "prefix">): GcsIamCondition {
  return {
    title: "vrb-status-record-only",
    description: `Only ${plan.prefix}<cluster>/vrb-status.json`,
    expression: `resource.name.startsWith("${objectsOf(plan)}${plan.prefix}") && resource.name.endsWith("/vrb-status.json")`,
  };
}

function roleName(plan: Pick<GcsBucketPlan, "project">, role: GcsCustomRole): string {
  return `projects/${plan.project}/roles/${role.id}`;
}

/** One identity's bindings: its role under the prefix, and replacing the status records. */
function bindingsOf(plan: GcsBucketPlan, role: GcsCustomRole, members: string[]): GcsIamPolicyDocument {
  const prefix = gcsPrefixCondition(plan);
  return {
    version: 3,
    bindings: [
      { role: roleName(plan, role), members, ...(prefix ? { condition: prefix } : {}) },
      { role: roleName(plan, plan.roles.statusRecord), members, condition: gcsStatusRecordCondition(plan) },
    ],
  };
}

/** The writer's bindings on the bucket: create/get/list (and set retention when locking), plus replacing the status records. */
export function gcsWriterPolicyDocument(plan: GcsBucketPlan, members = plan.writerMembers): GcsIamPolicyDocument {
  return bindingsOf(plan, plan.roles.writer, members);
}

/** The restorer's bindings: get/list, plus replacing the status records so restores and drills are on record. */
export function gcsRestorerPolicyDocument(plan: GcsBucketPlan, members = plan.restorerMembers): GcsIamPolicyDocument {
  return bindingsOf(plan, plan.roles.reader, members);
}

/** The pruner's bindings (`vrb prune`): get/list/delete under the prefix, plus replacing the status records to record its runs. */
export function gcsPrunerPolicyDocument(plan: GcsBucketPlan, members = plan.prunerMembers): GcsIamPolicyDocument {
  return bindingsOf(plan, plan.roles.pruner, members);
}
