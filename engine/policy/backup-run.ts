import { z } from "zod";
import { durationSchema } from "./field-formats.js";

/** How often a snapshot is due: the schedule window of Pulumi and of the RPO check. */
export const scheduleSchema = z
  .object({
    every: durationSchema.describe(
      "Size of the schedule window: Pulumi takes one snapshot per window (e.g. '6h': 00:00, 06:00, ... UTC), and `vrb list --check-rpo` fails when a whole window passed without a good snapshot. Units s, m, h, d, w, combinable ('1h30m'); at least 1m.",
    ),
  })
  .strict()
  .default({ every: "6h" })
  .describe("How often a snapshot is due.");

/** How a backup rides through leader elections and transient failures. */
export const backupRunSchema = z
  .object({
    leaderWaitSeconds: z
      .number()
      .int()
      .min(0, "must be between 0 and 3600 seconds")
      .max(3600, "must be between 0 and 3600 seconds")
      .optional()
      .describe(
        "How long a backup waits for an active node while every reachable node is a standby (a leader election, usually under a second, sometimes several). Default 60; `--leader-wait` overrides it. A sealed or uninitialised cluster fails at once.",
      ),
    retries: z
      .number()
      .int()
      .min(0, "must be between 0 and 10")
      .max(10, "must be between 0 and 10")
      .optional()
      .describe("How often a failed backup is run again, from the node that is active then (jittered backoff). Default 2; `--retries` overrides it."),
  })
  .strict()
  .optional()
  .describe("How a backup rides through leader elections and transient failures.");

/** The shrink guard: how much a backup's inventory may fall before it is suspect (engine/snapshot/inventory/guard.ts). */
export const shrinkGuardSchema = z
  .object({
    maxDropPercent: z
      .number()
      .min(0, "must be between 0 and 100")
      .max(100, "must be between 0 and 100")
      .default(20)
      .describe("A backup whose key count, over all mounts or in any one mount, fell by more than this percentage since the previous good snapshot is a shrink. Default 20."),
    action: z
      .enum(["warn", "fail"], { errorMap: () => ({ message: "must be warn or fail" }) })
      .default("warn")
      .describe(
        "warn: the backup succeeds with a warning. fail: the snapshot is stored, its manifest marked `suspect`, and the backup exits 1 at stage `guard`; a suspect snapshot is never `latest` and retention keeps the newest good one before it.",
      ),
    minKeys: z
      .number()
      .int()
      .min(0, "must be a whole number >= 0")
      .default(10)
      .describe(
        "Mounts that held fewer keys than this in the previous snapshot are not judged on their own (a mount of 2 keys losing 1 is not a shrink worth a page). Default 10.",
      ),
  })
  .strict()
  .optional()
  .describe("Shrink guard: compare each backup's inventory (keys per mount) with the previous good snapshot's (docs/inspect.md).");
