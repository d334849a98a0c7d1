import { readFileSync, existsSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "./errors.js";
import { parseDuration } from "./schedule.js";

/**
 * The backup policy (DESIGN.md §3): one schema for Pulumi config `vault-raft-backup:policy` and
 * for `vrb --policy FILE.yaml`. Secrets never go here (tokens and unseal keys come from env or
 * Pulumi secret config).
 */
const clusterName = z
  .string({ required_error: "is required; set the cluster's name, e.g. 'prod'" })
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and '-', at most 63 characters (it is part of every object key), e.g. 'prod'");

const nodeUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === "http:" || u.protocol === "https:") && u.pathname === "/" && !u.search;
    } catch {
      return false;
    }
  }, "must be a node's API address like https://vault-0.example:8200 (scheme, host, port; no path)");

const bucketName = z
  .string({ required_error: "is required; name the S3 bucket that holds the snapshots" })
  .regex(
    /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    "must be a valid S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
  );

const prefix = z
  .string()
  .regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, "must be empty or path segments each ending in '/', e.g. 'vault/' (no leading '/')");

const duration = z.string().refine((v) => {
  try {
    return parseDuration(v) >= 60_000;
  } catch {
    return false;
  }
}, "must be a duration of at least 1m like '30m', '6h' or '1d'");

const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region like 'us-east-1'");

const cidr = z
  .string()
  .regex(/^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]+)\/[0-9]{1,3}$/, "must be a CIDR block like '10.0.0.0/16' or '192.0.2.7/32'");

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
    create: z.boolean().default(true),
    /** Current snapshot versions expire this many days after upload (default: the retention window + 7). */
    expireAfterDays: z.number().int().min(1, "must be at least 1 day").optional(),
    /** Versions that stopped being current are removed this many days later (locked ones only once unlocked). */
    noncurrentExpireAfterDays: z.number().int().min(1, "must be at least 1 day").default(7),
    abortIncompleteUploadDays: z
      .number()
      .int()
      .min(1, "must be between 1 and 7 days (an unfinished upload is never a usable snapshot)")
      .max(7, "must be between 1 and 7 days (an unfinished upload is never a usable snapshot)")
      .default(2),
    transition: z.object({ days: z.number().int().min(1, "must be at least 1 day"), storageClass }).strict().optional(),
    /** A second region for an off-site copy (replica bucket with its own KMS key and object lock). */
    replicaRegion: region.optional(),
    /** Name of the replica bucket (default `<destination.bucket>-replica`). */
    replicaBucket: bucketName.optional(),
    accessLog: z.object({ bucket: bucketName, prefix: prefix.default("s3-access/") }).strict().optional(),
  })
  .strict();

const mountPath = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_/-]*[A-Za-z0-9]$/, "must be an auth mount path without slashes at the ends, e.g. 'jwt'");

/** What the Pulumi `VaultBackupAccess` builds in Vault (the `vrb` CLI ignores this section). */
export const accessOptionsSchema = z
  .object({
    /** Prefix of every Vault policy and role name (default `vrb-<cluster.name>`). */
    namePrefix: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,40}$/, "must be lowercase letters, digits and '-', at most 41 characters, e.g. 'vrb-prod'")
      .optional(),
    tokenRole: z
      .object({
        /** Tokens live as long as they are renewed within this period (periodic tokens). */
        period: duration.default("24h"),
        /** Hard cap on a token's life even when renewed (token_explicit_max_ttl). */
        maxTtl: duration.optional(),
        boundCidrs: z.array(cidr).optional(),
      })
      .strict()
      .default({}),
    appRole: z
      .object({
        mount: mountPath.default("approle"),
        createMount: z.boolean().default(false),
        secretIdTtl: duration.default("1h"),
        secretIdBoundCidrs: z.array(cidr).optional(),
        boundCidrs: z.array(cidr).optional(),
      })
      .strict()
      .optional(),
    ci: z
      .object({
        mount: mountPath.default("jwt"),
        createMount: z.boolean().default(false),
        issuer: z.string().url("must be the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com").default("https://token.actions.githubusercontent.com"),
        repository: z
          .string({ required_error: "is required; name the repository allowed to take snapshots, e.g. 'acme/platform'" })
          .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "must be 'owner/name', e.g. 'acme/platform'"),
        branch: z.string().regex(/^[^\s*?]+$/, "must be one branch name, e.g. 'main' (no wildcards)").default("main"),
        /** Expected `aud` claim (default: GitHub's, https://github.com/<owner>). */
        audience: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type BucketOptions = z.output<typeof bucketOptionsSchema>;
export type AccessOptions = z.output<typeof accessOptionsSchema>;
export type BucketOptionsInput = z.input<typeof bucketOptionsSchema>;
export type AccessOptionsInput = z.input<typeof accessOptionsSchema>;

export const policySchema = z
  .object({
    cluster: z
      .object({
        name: clusterName,
        nodes: z.array(nodeUrl, { required_error: "is required; list every node's API address" }).min(1, "must list at least one node address"),
        caCert: z.string().min(1).optional(),
        tlsServerName: z.string().min(1).optional(),
      }, { required_error: "is required: { name, nodes: [https://vault-0:8200, ...] }" })
      .strict(),
    destination: z
      .object({
        bucket: bucketName,
        prefix: prefix.default(""),
        region: region.optional(),
        endpoint: z.string().url("must be a URL like https://s3.example.com").optional(),
        forcePathStyle: z.boolean().optional(),
        kmsKeyId: z.string().min(1, "must be a KMS key ARN, id or alias").optional(),
      }, { required_error: "is required: { bucket, prefix?, region? }" })
      .strict(),
    retention: z
      .object({
        keepLast: z.number().int().min(1, "must be at least 1 (the newest good snapshot is always kept)").optional(),
        maxAgeDays: z.number().int().min(1, "must be at least 1 day").optional(),
      })
      .strict()
      .default({ keepLast: 30 }),
    objectLock: z
      .object({
        mode: z.enum(["GOVERNANCE", "COMPLIANCE"], {
          errorMap: () => ({ message: "must be GOVERNANCE or COMPLIANCE" }),
        }),
        days: z.number().int().min(1, "must be at least 1 day").max(36500, "must be at most 36500 days"),
      })
      .strict()
      .optional(),
    schedule: z
      .object({ every: duration })
      .strict()
      .default({ every: "6h" }),
    verify: z
      .object({
        canaries: z
          .array(z.string().regex(/^[^/\s][^\s]*$/, "must be a Vault path without a leading '/', e.g. 'secret/data/dr-canary'"))
          .optional(),
      })
      .strict()
      .optional(),
    bucket: bucketOptionsSchema.optional(),
    access: accessOptionsSchema.optional(),
  })
  .strict();

export type BackupPolicy = z.output<typeof policySchema>;
export type BackupPolicyInput = z.input<typeof policySchema>;

function formatIssue(issue: z.ZodIssue, source: string): { field: string; text: string } {
  const field = issue.path.join(".") || "(top level)";
  let msg = issue.message;
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? issue.path.join(".") + "." : "";
    return {
      field: where + issue.keys[0],
      text: `${source}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${where}${k}'`).join(", ")}; remove it or check its spelling (see the policy schema in the README)`,
    };
  }
  if (issue.code === "invalid_type") {
    msg = issue.received === "undefined" ? (issue.message !== "Required" ? issue.message : "is required") : `must be a ${issue.expected}, got ${issue.received}`;
  }
  return { field, text: `${source}: ${field} ${msg}` };
}

/**
 * Parses `input` with one part of the policy schema; errors carry the dotted field path under
 * `at` (e.g. `bucket`), so a part validated on its own reads exactly like the whole policy.
 */
export function validatePart<S extends z.ZodTypeAny>(schema: S, input: unknown, at: string[], source = "policy"): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((i) => formatIssue({ ...i, path: [...at, ...i.path] }, source));
    throw new ConfigError(issues.map((i) => i.text).join("\n"), { field: issues[0]?.field });
  }
  return result.data;
}

/** Validates a parsed policy. Errors name every bad field and how to fix it. */
export function validatePolicy(input: unknown, source = "policy"): BackupPolicy {
  const policy = validatePart(policySchema, input, [], source);
  if (policy.cluster.nodes.some((n) => n.startsWith("http://")) && policy.cluster.caCert) {
    throw new ConfigError(`${source}: cluster.caCert is set but a node address uses http://; use https:// addresses`, {
      field: "cluster.caCert",
    });
  }
  return policy;
}

export function parsePolicyText(text: string, source: string): BackupPolicy {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid YAML: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
  }
  return validatePolicy(doc, source);
}

export function loadPolicyFile(path: string): BackupPolicy {
  if (!existsSync(path)) throw new ConfigError(`policy file ${path} does not exist; pass an existing file with --policy`, { field: "--policy" });
  return parsePolicyText(readFileSync(path, "utf8"), path);
}
