import { z } from "zod";
import { awsRegionSchema, prefixSchema, s3BucketNameSchema } from "../storage/destination.js";

const bucketName = s3BucketNameSchema;
const prefix = prefixSchema;

const region = awsRegionSchema;

const storageClass = z.enum(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], {
  errorMap: () => ({ message: "must be one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER, DEEP_ARCHIVE" }),
});

/**
 * What the Pulumi `SnapshotBucket` builds (the `vrb` CLI ignores this section). Cross-field rules
 * (expiry versus lock and retention) are checked by `bucketPlan` in engine/access/plan.ts.
 */
export const bucketOptionsSchema = z
  .object({
    /** false: the bucket exists already (e.g. the local environment's); nothing about it is managed. */
    create: z.boolean().default(true).describe("false: the bucket exists already (e.g. the local environment's) and nothing about it is managed."),
    /** Current snapshot versions expire this many days after upload (default: the retention window + 7). */
    expireAfterDays: z
      .number()
      .int()
      .min(1, "must be at least 1 day")
      .optional()
      .describe(
        "Current snapshot versions expire this many days after upload. Default: max(objectLock.days, retention.maxAgeDays) + 7; it must not be shorter than the lock or the retention.",
      ),
    /** Versions that stopped being current are removed this many days later (locked ones only once unlocked). */
    noncurrentExpireAfterDays: z
      .number()
      .int()
      .min(1, "must be at least 1 day")
      .default(7)
      .describe("Versions that stopped being current are removed this many days later (locked ones only once unlocked)."),
    abortIncompleteUploadDays: z
      .number()
      .int()
      .min(1, "must be between 1 and 7 days (an unfinished upload is never a usable snapshot)")
      .max(7, "must be between 1 and 7 days (an unfinished upload is never a usable snapshot)")
      .default(2)
      .describe("Unfinished multipart uploads are aborted after this many days (an unfinished upload is never a usable snapshot)."),
    transition: z
      .object({
        days: z.number().int().min(1, "must be at least 1 day").describe("Days after upload."),
        storageClass: storageClass.describe("Storage class to move snapshots to."),
      })
      .strict()
      .optional()
      .describe("Move snapshots to a colder storage class after some days."),
    /** A second region for an off-site copy (replica bucket with its own KMS key and object lock). */
    replicaRegion: region.optional().describe("A second region for an off-site copy: a replica bucket with its own KMS key and object lock (deletes are not replicated)."),
    /** Name of the replica bucket (default `<destination.bucket>-replica`). */
    replicaBucket: bucketName.optional().describe("Name of the replica bucket (default `<destination.bucket>-replica`)."),
    accessLog: z
      .object({ bucket: bucketName.describe("Bucket that receives the access logs."), prefix: prefix.default("s3-access/").describe("Key prefix of the log objects.") })
      .strict()
      .optional()
      .describe("S3 server access logging of the snapshot bucket."),
  })
  .strict()
  .describe("What the Pulumi SnapshotBucket builds; the vrb CLI ignores this section.");

export type BucketOptions = z.output<typeof bucketOptionsSchema>;
export type BucketOptionsInput = z.input<typeof bucketOptionsSchema>;
