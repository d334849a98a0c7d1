import { z } from "zod";

/** What a restore or drill checks at the end (the policy's `verify` section). */
export const restoreChecksSchema = z
  .object({
    canaries: z
      .array(z.string().regex(/^[^/\s][^\s]*$/, "must be a Vault path without a leading '/', e.g. 'secret/data/dr-canary'"))
      .optional()
      .describe("Vault paths that must be readable after a restore or drill, e.g. secret/data/dr-canary."),
  })
  .strict()
  .optional()
  .describe("What a restore checks at the end, besides the Raft and autopilot state.");
