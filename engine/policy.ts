import { z } from "zod";
import { ConfigError } from "./errors.js";
import { accessOptionsSchema } from "./policy/access-options.js";
import { backupRunSchema, scheduleSchema, shrinkGuardSchema } from "./policy/backup-run.js";
import { bucketOptionsSchema } from "./policy/bucket-options.js";
import { clusterSchema } from "./policy/cluster-section.js";
import { drillSchema } from "./policy/drill-section.js";
import { encryptionSchema } from "./policy/encryption-section.js";
import { filesSchema } from "./policy/files-section.js";
import { restoreChecksSchema } from "./policy/restore-checks.js";
import { objectLockSchema, retentionSchema } from "./policy/retention-and-lock.js";
import { validatePart } from "./policy/validate-part.js";
import { parsePolicyYaml, readPolicyYaml } from "./policy-text.js";
import { destinationSchema } from "./storage/destination.js";
import { checkDestinationNames } from "./storage/named-destination.js";

/**
 * The backup policy: one schema for Pulumi config `vault-raft-backup:policy` and for
 * `vrb --policy FILE.yaml`. Secrets never go here (tokens and unseal keys come from env or
 * Pulumi secret config). The `.describe()` texts are the field reference: `npm run docs` renders
 * them into docs/policy.md and schema/policy.schema.json (editors show them as hover help).
 *
 * Each section's schema lives in engine/policy/, one file per part of the file a reader looks up;
 * this file puts them together in the order docs/policy.md lists them, validates and loads, and is
 * the one import path for everything the engine exports about the policy.
 */
export { accessOptionsSchema, type AccessOptions, type AccessOptionsInput } from "./policy/access-options.js";
export { bucketOptionsSchema, type BucketOptions, type BucketOptionsInput } from "./policy/bucket-options.js";
export { AUTH_METHODS, authSchema, type AuthMethod, type AuthSettings } from "./policy/cluster-auth.js";
export { encryptionSchema } from "./policy/encryption-section.js";
export { drillSchema, type DrillPolicy, type DrillPolicyInput } from "./policy/drill-section.js";
export { durationSchema, nodeUrlSchema } from "./policy/field-formats.js";
export { filesSchema } from "./policy/files-section.js";
export { validatePart } from "./policy/validate-part.js";

export const policySchema = z
  .object({
    cluster: clusterSchema,
    destination: destinationSchema,
    copies: z
      .array(destinationSchema)
      .max(4, "at most 4 copies: each one is written in the same pass as the primary")
      .optional()
      .describe(
        "Off-site copies: further destinations (each with a `name`) written in the same pass as `destination`, each with its own manifest. `vrb list`, `verify`, `restore`, `drill`, `recover`, `inspect`, `prune` and `status` take `--destination NAME`.",
      ),
    onCopyFailure: z
      .enum(["fail", "warn"], { errorMap: () => ({ message: "must be 'fail' (a failed copy fails the backup, exit 1) or 'warn'" }) })
      .default("fail")
      .describe(
        "`fail`: a copy that could not be written fails the backup (exit 1) even though the primary succeeded; `warn`: it is reported and recorded, and the backup succeeds.",
      ),
    retention: retentionSchema,
    objectLock: objectLockSchema,
    schedule: scheduleSchema,
    backup: backupRunSchema,
    guard: shrinkGuardSchema,
    verify: restoreChecksSchema,
    drill: drillSchema.optional(),
    encryption: encryptionSchema.optional(),
    files: filesSchema.optional(),
    bucket: bucketOptionsSchema.optional(),
    access: accessOptionsSchema.optional(),
  })
  .strict()
  .describe("Backup policy of vault-raft-backup: one file per cluster (vrb --policy FILE) or the Pulumi config value vault-raft-backup:policy. No secrets here.");

export type BackupPolicy = z.output<typeof policySchema>;
export type BackupPolicyInput = z.input<typeof policySchema>;

/** Validates a parsed policy. Errors name every bad field and how to fix it. */
export function validatePolicy(input: unknown, source = "policy"): BackupPolicy {
  const policy = validatePart(policySchema, input, [], source);
  if (policy.cluster.nodes.some((n) => n.startsWith("http://")) && policy.cluster.caCert) {
    throw new ConfigError(`${source}: cluster.caCert is set but a node address uses http://; use https:// addresses`, {
      field: "cluster.caCert",
    });
  }
  checkDestinationNames(policy, source);
  if (policy.drill && policy.encryption && !policy.drill.identityFile) {
    throw new ConfigError(
      `${source}: drill.identityFile is required: the snapshots are encrypted (encryption), and a drill must decrypt them; set it to an identity file that matches one of the recipients`,
      { field: "drill.identityFile" },
    );
  }
  return policy;
}

/** A policy from YAML text (e.g. a config value); `source` names it in every error. */
export function parsePolicyText(text: string, source: string): BackupPolicy {
  return validatePolicy(parsePolicyYaml(text, source), source);
}

/** The policy file at `path`: UTF-8 YAML text (a binary given by mistake is refused naming the file, not echoed), validated. */
export function loadPolicyFile(path: string): BackupPolicy {
  return validatePolicy(readPolicyYaml(path), path);
}
