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
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region like 'us-east-1'").optional(),
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

/** Validates a parsed policy. Errors name every bad field and how to fix it. */
export function validatePolicy(input: unknown, source = "policy"): BackupPolicy {
  const result = policySchema.safeParse(input);
  if (!result.success) {
    const issues = result.error.issues.map((i) => formatIssue(i, source));
    throw new ConfigError(issues.map((i) => i.text).join("\n"), { field: issues[0]?.field });
  }
  const policy = result.data;
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
