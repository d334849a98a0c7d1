import { z } from "zod";

/** What `vrb prune` keeps (engine/catalogue/retention.ts). */
export const retentionSchema = z
  .object({
    keepLast: z.number().int().min(1, "must be at least 1 (the newest good snapshot is always kept)").optional().describe("Keep the newest N good snapshots."),
    maxAgeDays: z.number().int().min(1, "must be at least 1 day").optional().describe("Delete good snapshots older than D days."),
  })
  .strict()
  .default({ keepLast: 30 })
  .describe("What `vrb prune` keeps. Both limits apply; the newest good snapshot is never deleted.");

/** The S3 Object Lock retention the backup sets on every snapshot and manifest. */
export const objectLockSchema = z
  .object({
    mode: z
      .enum(["GOVERNANCE", "COMPLIANCE"], {
        errorMap: () => ({ message: "must be GOVERNANCE or COMPLIANCE" }),
      })
      .describe("GOVERNANCE: principals with s3:BypassGovernanceRetention may delete early. COMPLIANCE: nobody can, not even the account root, until the date."),
    days: z.number().int().min(1, "must be at least 1 day").max(36500, "must be at most 36500 days").describe("Days each object stays locked after upload."),
  })
  .strict()
  .optional()
  .describe(
    "S3 Object Lock retention set on every snapshot and manifest after upload, and read back. Absent: objects are not locked by the backup (the bucket's default retention may still apply).",
  );
