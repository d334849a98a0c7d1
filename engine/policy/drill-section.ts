import { z } from "zod";
import { durationSchema } from "./field-formats.js";

const filePath = z.string().min(1, "must be a file path");

/**
 * Scheduled restore drills (engine/drill/scheduled.ts): after a backup, when no drill passed within
 * `every`, the snapshot just stored is restored into a throwaway local node and checked. Only file
 * paths here: the keys and identities stay in their files. Whether the files exist is checked when
 * the drill is due (a missing file is a skipped drill, named in the report and the status record),
 * not here: the policy is also validated where the files do not live (a Pulumi preview, CI).
 */
export const drillSchema = z
  .object({
    every: durationSchema.describe(
      "A drill is due when no drill passed within this long (from the cluster's status record): the next backup then restores the snapshot it just stored into a throwaway node. `vrb status --check` fails when none passed within it plus one schedule window (the time the due drill waits for the next backup). E.g. '7d'; at least 1m.",
    ),
    unsealKeysFile: filePath
      .optional()
      .describe(
        "Shamir seal: the original cluster's init output (`operator init -format=json`: unseal_keys_b64, and root_token to check canaries and key counts; without it the drill generates a root token with the keys). Give this or `recoveryKeysFile`.",
      ),
    recoveryKeysFile: filePath
      .optional()
      .describe("Auto-unseal seal: the cluster's init output with its recovery keys (recovery_keys_b64). Needs `sealConfigFile`. Give this or `unsealKeysFile`."),
    sealConfigFile: filePath
      .optional()
      .describe(
        'With `recoveryKeysFile`: a file holding the cluster\'s `seal "<type>" { ... }` block, as in its server config; the throwaway nodes use it (it must reach the KMS or transit key).',
      ),
    identityFile: filePath
      .optional()
      .describe(
        "Required when the policy has `encryption`: the age identity file or armored OpenPGP private key (passphrase from VRB_IDENTITY_PASSPHRASE) the drill decrypts with, proving a restore can decrypt.",
      ),
    timeBudget: durationSchema
      .default("30m")
      .describe("A drill that has not proven the restored node healthy within this long is stopped and fails (its RTO is over budget). Default 30m."),
    nodes: z
      .number()
      .int()
      .min(1, "must be between 1 and 5 throwaway nodes")
      .max(5, "must be between 1 and 5 throwaway nodes")
      .default(1)
      .describe("Size of the throwaway cluster. Default 1 (a scheduled drill proves the data; `vrb drill --nodes 3` rehearses the whole rebuild)."),
    workDir: z
      .string()
      .min(1, "must be a folder path")
      .optional()
      .describe("Folder for the throwaway nodes' data (default: the OS temp folder). It needs free space for about three times the snapshot, else the drill is skipped."),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.unsealKeysFile && d.recoveryKeysFile) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["recoveryKeysFile"],
        message: "give either unsealKeysFile (Shamir seal) or recoveryKeysFile (auto-unseal seal), not both",
      });
    } else if (!d.unsealKeysFile && !d.recoveryKeysFile) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["unsealKeysFile"],
        message: "is required: the throwaway node is unsealed with the cluster's keys; set unsealKeysFile (Shamir seal) or recoveryKeysFile with sealConfigFile (auto-unseal)",
      });
    }
    if (d.recoveryKeysFile && !d.sealConfigFile) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["sealConfigFile"],
        message: "is required with recoveryKeysFile: an auto-unseal snapshot restores only into nodes with the cluster's seal; set it to a file with the seal block",
      });
    }
    if (d.sealConfigFile && !d.recoveryKeysFile) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["sealConfigFile"],
        message: "applies to auto-unseal clusters only (with recoveryKeysFile); remove it, or replace unsealKeysFile with recoveryKeysFile",
      });
    }
  })
  .describe(
    "Scheduled restore drills: `vrb backup` (and the Pulumi VaultSnapshot) restores the snapshot it just stored into a throwaway local node of the snapshot's product and version when no drill passed within `every`, checks it (unseal, canaries, keys per mount against the manifest), records the verdict and the RTO, and exits 1 when it fails (docs/restore.md).",
  );

export type DrillPolicy = z.output<typeof drillSchema>;
export type DrillPolicyInput = z.input<typeof drillSchema>;
