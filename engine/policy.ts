import { z } from "zod";
import { ConfigError } from "./errors.js";
import { parsePolicyYaml, readPolicyYaml } from "./policy-text.js";
import { parseDuration } from "./schedule.js";
import { awsRegionSchema, destinationSchema, prefixSchema, s3BucketNameSchema } from "./storage/destination.js";
import { checkDestinationNames } from "./storage/named-destination.js";

/**
 * The backup policy: one schema for Pulumi config `vault-raft-backup:policy` and for
 * `vrb --policy FILE.yaml`. Secrets never go here (tokens and unseal keys come from env or
 * Pulumi secret config). The `.describe()` texts are the field reference: `npm run docs` renders
 * them into docs/policy.md and schema/policy.schema.json (editors show them as hover help).
 */
const clusterName = z
  .string({ required_error: "is required; set the cluster's name, e.g. 'prod'" })
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and '-', at most 63 characters (it is part of every object key), e.g. 'prod'");

/** A node's API address (a refinement: the JSON Schema gets an equivalent pattern from the docs generator). */
export const nodeUrlSchema = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === "http:" || u.protocol === "https:") && u.pathname === "/" && !u.search;
  } catch {
    return false;
  }
}, "must be a node's API address like https://vault-0.example:8200 (scheme, host, port; no path)");

const bucketName = s3BucketNameSchema;
const prefix = prefixSchema;

/** A duration of at least one minute (a refinement: the JSON Schema checks only the syntax). */
export const durationSchema = z.string().refine((v) => {
  try {
    return parseDuration(v) >= 60_000;
  } catch {
    return false;
  }
}, "must be a duration of at least 1m like '30m', '6h' or '1d'");

const region = awsRegionSchema;

const cidr = z.string().regex(/^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]+)\/[0-9]{1,3}$/, "must be a CIDR block like '10.0.0.0/16' or '192.0.2.7/32'");

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

const mountPath = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_/-]*[A-Za-z0-9]$/, "must be an auth mount path without slashes at the ends, e.g. 'jwt'");

/** What the Pulumi `VaultBackupAccess` builds in Vault (the `vrb` CLI ignores this section). */
export const accessOptionsSchema = z
  .object({
    /** Prefix of every Vault policy and role name (default `vrb-<cluster.name>`). */
    namePrefix: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,40}$/, "must be lowercase letters, digits and '-', at most 41 characters, e.g. 'vrb-prod'")
      .optional()
      .describe("Prefix of every Vault policy and role name (default `vrb-<cluster.name>`: vrb-prod-snapshot, vrb-prod-restore)."),
    tokenRole: z
      .object({
        /** Tokens live as long as they are renewed within this period (periodic tokens). */
        period: durationSchema.default("24h").describe("Tokens live as long as they are renewed within this period (periodic tokens)."),
        /** Hard cap on a token's life even when renewed (token_explicit_max_ttl). */
        maxTtl: durationSchema.optional().describe("Hard cap on a token's life even when renewed (token_explicit_max_ttl); at least `period`."),
        boundCidrs: z.array(cidr).optional().describe("Networks the tokens may be used from."),
      })
      .strict()
      .default({})
      .describe("The token role that issues periodic, orphan snapshot tokens (snapshot policy only, no `default` policy)."),
    appRole: z
      .object({
        mount: mountPath.default("approle").describe("Path of the AppRole auth mount."),
        createMount: z.boolean().default(false).describe("true: create the auth mount as well."),
        secretIdTtl: durationSchema.default("1h").describe("Lifetime of a secret ID."),
        secretIdBoundCidrs: z.array(cidr).optional().describe("Networks a secret ID may be used from."),
        boundCidrs: z.array(cidr).optional().describe("Networks the issued tokens may be used from."),
      })
      .strict()
      .optional()
      .describe("An AppRole role with the snapshot policy, for cron jobs outside CI."),
    ci: z
      .object({
        mount: mountPath.default("jwt").describe("Path of the JWT auth mount."),
        createMount: z.boolean().default(false).describe("true: create and configure the auth mount as well."),
        issuer: z
          .string()
          .url("must be the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com")
          .default("https://token.actions.githubusercontent.com")
          .describe("OIDC issuer of the CI tokens."),
        repository: z
          .string({ required_error: "is required; name the repository allowed to take snapshots, e.g. 'acme/platform'" })
          .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "must be 'owner/name', e.g. 'acme/platform'")
          .describe("The one repository whose CI may log in."),
        branch: z
          .string()
          .regex(/^[^\s*?]+$/, "must be one branch name, e.g. 'main' (no wildcards)")
          .default("main")
          .describe("The one branch whose CI runs may log in."),
        /** Expected `aud` claim (default: GitHub's, https://github.com/<owner>). */
        audience: z.string().min(1).optional().describe("Expected `aud` claim (default: GitHub's, https://github.com/<owner>)."),
      })
      .strict()
      .optional()
      .describe("A JWT role that accepts only one CI repository and branch, so CI holds no long-lived secret."),
  })
  .strict()
  .describe("What the Pulumi VaultBackupAccess builds in Vault; the vrb CLI ignores this section.");

export type BucketOptions = z.output<typeof bucketOptionsSchema>;
export type AccessOptions = z.output<typeof accessOptionsSchema>;
export type BucketOptionsInput = z.input<typeof bucketOptionsSchema>;
export type AccessOptionsInput = z.input<typeof accessOptionsSchema>;

const authMount = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_/-]*[A-Za-z0-9]$|^[A-Za-z0-9]$/, "must be an auth mount path without slashes at the ends, e.g. 'approle'");
const filePath = z.string().min(1, "must be a file path");

/** The login methods `cluster.auth.method` accepts (engine/vault/auth.ts logs in with each). */
export const AUTH_METHODS = ["token", "approle", "jwt", "kubernetes", "cert"] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** How the kit gets a Vault token (docs/auth.md). Only file paths and names here: the secrets stay in files or the environment. */
export const authSchema = z
  .object({
    method: z
      .enum(AUTH_METHODS, { errorMap: () => ({ message: `must be one of ${AUTH_METHODS.join(", ")}` }) })
      .default("token")
      .describe(
        "How to get a token. token: VAULT_TOKEN / BAO_TOKEN, then `tokenFile`, then ~/.vault-token (never revoked). approle, jwt, kubernetes, cert: log in; the token is renewed while the command runs and revoked when it ends.",
      ),
    mount: authMount.optional().describe("Path of the auth mount (default: the method's name: approle, jwt, kubernetes, cert)."),
    role: z.string().min(1).optional().describe("Role to log in as: required for jwt and kubernetes; for cert, the certificate role (default: any role whose CA matches)."),
    roleIdFile: filePath.optional().describe("approle: file holding the role ID (default: VAULT_ROLE_ID)."),
    secretIdFile: filePath.optional().describe("approle: file holding the secret ID, or a response-wrapping token for it, which is unwrapped (default: VAULT_SECRET_ID)."),
    jwtFile: filePath
      .optional()
      .describe("jwt: file holding the JWT (default: VRB_JWT); kubernetes: the service account token (default /var/run/secrets/kubernetes.io/serviceaccount/token)."),
    tokenFile: filePath.optional().describe("token: file holding a token, e.g. a Vault Agent sink; used when VAULT_TOKEN and BAO_TOKEN are unset."),
  })
  .strict()
  .superRefine((a, ctx) => {
    const only = (field: keyof typeof a, methods: AuthMethod[]) => {
      if (a[field] !== undefined && !methods.includes(a.method)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [field], message: `applies to method ${methods.join(" or ")} only, not ${a.method}; remove it or set method` });
      }
    };
    only("roleIdFile", ["approle"]);
    only("secretIdFile", ["approle"]);
    only("jwtFile", ["jwt", "kubernetes"]);
    only("tokenFile", ["token"]);
    only("role", ["jwt", "kubernetes", "cert"]);
    only("mount", ["approle", "jwt", "kubernetes", "cert"]);
    if ((a.method === "jwt" || a.method === "kubernetes") && a.role === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["role"], message: `is required for method ${a.method}: the role to log in as` });
    }
  })
  .describe("How the kit logs in to Vault (docs/auth.md). Default: a token from VAULT_TOKEN, BAO_TOKEN or ~/.vault-token.");

export type AuthSettings = z.output<typeof authSchema>;

/** Client-side encryption of every stored object (docs/encryption.md). One format per policy. */
export const encryptionSchema = z
  .object({
    age: z
      .array(z.string().regex(/^age1[0-9a-z]+$/, "must be an age recipient (public key) like 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'"))
      .min(1, "must list at least one age recipient, or leave 'age' out")
      .optional()
      .describe("age X25519 (or post-quantum) recipients, 'age1...': each can decrypt with its identity file (`age-keygen`)."),
    pgp: z
      .array(z.string().min(1, "must be a file path or armored public key text"))
      .min(1, "must list at least one OpenPGP public key, or leave 'pgp' out")
      .optional()
      .describe(
        "OpenPGP public keys: file paths (relative to the working directory) or armored text ('-----BEGIN PGP PUBLIC KEY BLOCK-----...'). The manifest records their fingerprints.",
      ),
  })
  .strict()
  .refine(
    (e) => !(e.age?.length && e.pgp?.length),
    "give either 'age' or 'pgp' recipients, not both: each stored object has one format (use one age or one pgp list for the whole team)",
  )
  .refine((e) => Boolean(e.age?.length || e.pgp?.length), "must list 'age' or 'pgp' recipients")
  .describe(
    "Client-side encryption: the snapshot and the files archive are stored as ciphertext (age format, or an OpenPGP binary message) for these recipients, in the same streamed pass; restore, drill, verify --identity and files need one matching identity.",
  );

/** Configuration files stored beside each snapshot (docs/encryption.md, "Configuration files"). */
export const filesSchema = z
  .object({
    paths: z
      .array(z.string().min(1, "must be a file, directory or glob path"))
      .min(1, "must list at least one file, directory or glob")
      .describe("Files, directories (recursively) and globs (`*`, `?`, `**`) on the backup host, e.g. /etc/openbao/openbao.hcl, /etc/openbao/tls/."),
    allowPlaintextSecrets: z
      .boolean()
      .default(false)
      .describe("Store files holding private keys (PEM, age, OpenPGP) without `encryption`. Default false: such a backup is refused before anything is uploaded."),
  })
  .strict()
  .describe("Configuration files backed up as one tar archive beside each snapshot (`<snapshot key>.files.tar`), encrypted like the snapshot; `vrb files` writes them back.");

export const policySchema = z
  .object({
    cluster: z
      .object(
        {
          name: clusterName.describe("Name of the cluster: part of every object key and manifest; `vrb list`, `vrb restore latest` and the Pulumi resources find snapshots by it."),
          nodes: z
            .array(nodeUrlSchema, { required_error: "is required; list every node's API address" })
            .min(1, "must list at least one node address")
            .describe("API address of every node (scheme, host, port; no path). A backup asks them which one is active and streams the snapshot from that one."),
          caCert: z
            .string()
            .min(1)
            .optional()
            .describe("CA certificate that signs the nodes' TLS certificates: PEM text or a file path (default: VAULT_CACERT). Needs https:// node addresses."),
          tlsServerName: z
            .string()
            .min(1)
            .optional()
            .describe("Name to check in the nodes' certificates when it differs from the host in the address (default: VAULT_TLS_SERVER_NAME)."),
          clientCert: z
            .string()
            .min(1)
            .optional()
            .describe("Client certificate (PEM file path) for listeners that require mTLS, and for the cert login method (default: VAULT_CLIENT_CERT)."),
          clientKey: z.string().min(1).optional().describe("Private key (PEM file path) of `clientCert` (default: VAULT_CLIENT_KEY)."),
          auth: authSchema.default({}),
        },
        { required_error: "is required: { name, nodes: [https://vault-0:8200, ...] }" },
      )
      .strict()
      .describe("The cluster whose snapshots these are."),
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
    retention: z
      .object({
        keepLast: z.number().int().min(1, "must be at least 1 (the newest good snapshot is always kept)").optional().describe("Keep the newest N good snapshots."),
        maxAgeDays: z.number().int().min(1, "must be at least 1 day").optional().describe("Delete good snapshots older than D days."),
      })
      .strict()
      .default({ keepLast: 30 })
      .describe("What `vrb prune` keeps. Both limits apply; the newest good snapshot is never deleted."),
    objectLock: z
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
      ),
    schedule: z
      .object({
        every: durationSchema.describe(
          "Size of the schedule window: Pulumi takes one snapshot per window (e.g. '6h': 00:00, 06:00, ... UTC), and `vrb list --check-rpo` fails when a whole window passed without a good snapshot. Units s, m, h, d, w, combinable ('1h30m'); at least 1m.",
        ),
      })
      .strict()
      .default({ every: "6h" })
      .describe("How often a snapshot is due."),
    backup: z
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
      .describe("How a backup rides through leader elections and transient failures."),
    guard: z
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
      .describe("Shrink guard: compare each backup's inventory (keys per mount) with the previous good snapshot's (docs/inspect.md)."),
    verify: z
      .object({
        canaries: z
          .array(z.string().regex(/^[^/\s][^\s]*$/, "must be a Vault path without a leading '/', e.g. 'secret/data/dr-canary'"))
          .optional()
          .describe("Vault paths that must be readable after a restore or drill, e.g. secret/data/dr-canary."),
      })
      .strict()
      .optional()
      .describe("What a restore checks at the end, besides the Raft and autopilot state."),
    encryption: encryptionSchema.optional(),
    files: filesSchema.optional(),
    bucket: bucketOptionsSchema.optional(),
    access: accessOptionsSchema.optional(),
  })
  .strict()
  .describe("Backup policy of vault-raft-backup: one file per cluster (vrb --policy FILE) or the Pulumi config value vault-raft-backup:policy. No secrets here.");

export type BackupPolicy = z.output<typeof policySchema>;
export type BackupPolicyInput = z.input<typeof policySchema>;

function formatIssue(issue: z.ZodIssue, source: string): { field: string; text: string } {
  const field = issue.path.join(".") || "(top level)";
  let msg = issue.message;
  if (issue.code === "unrecognized_keys") {
    const where = issue.path.length ? issue.path.join(".") + "." : "";
    return {
      field: where + issue.keys[0],
      text: `${source}: unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${where}${k}'`).join(", ")}; remove it or check its spelling (the fields are listed in docs/policy.md)`,
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
  checkDestinationNames(policy, source);
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
