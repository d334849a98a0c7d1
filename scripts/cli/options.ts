import type { Command } from "commander";
import { ConfigError, givenToken, readPolicyYaml, registerSecret, tokenFromEnv, validatePolicy, type BackupPolicy } from "../../engine/index.js";
import type { GlobalOptions } from "./common.js";

/** Flags shared by the commands that need a policy (backup, list, verify, prune, restore, drill). */
export interface PolicyFlags extends GlobalOptions {
  policy?: string;
  vaultAddr?: string[];
  bucket?: string;
  prefix?: string;
  cluster?: string;
  keepLast?: number;
  maxAgeDays?: number;
  authMethod?: string;
  authMount?: string;
  authRole?: string;
  roleIdFile?: string;
  secretIdFile?: string;
  jwtFile?: string;
  tokenFile?: string;
  clientCert?: string;
  clientKey?: string;
  /** `--destination NAME`: which of the policy's destinations a reading command uses (addDestinationFlag). */
  destination?: string;
}

export interface PolicyFromCliOptions {
  /** Backups need node addresses; list/verify/prune do not (the policy's nodes may then be empty). */
  requireNodes?: boolean;
}

/** Adds `--policy`, `--bucket`, `--prefix`, `--cluster` (and `--vault-addr` when nodes matter). */
export function addPolicyFlags(cmd: Command, opts: { nodes?: boolean } = {}): Command {
  cmd
    .option("--policy <file>", "policy YAML (fields: docs/policy.md); flags and environment fill or override it")
    .option("--bucket <name>", "S3 bucket (default: policy, then VRB_BUCKET)")
    .option("--prefix <prefix>", "key prefix ending in '/' (default: policy, then VRB_PREFIX)")
    .option("--cluster <name>", "cluster name used in object keys (default: policy, then VRB_CLUSTER)");
  if (opts.nodes !== false) {
    cmd.option(
      "--vault-addr <url>",
      "a node's API address; repeat for each node (default: policy, then VRB_NODES, then VAULT_ADDR/BAO_ADDR)",
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    );
  }
  return cmd;
}

/**
 * Adds `--destination NAME` to a command that reads snapshots: the one place the flag is defined.
 * The backup writes every destination in one pass, so it does not take it.
 */
export function addDestinationFlag(cmd: Command): Command {
  return cmd.option(
    "--destination <name>",
    "which of the policy's destinations to read: a copy's name, or the primary's ('primary' unless it is named); default: the primary (docs/storage.md#copies-and---destination)",
  );
}

/**
 * Adds the login flags (docs/auth.md) to a command that talks to Vault. Secrets are never flags:
 * only the files that hold them are.
 */
export function addAuthFlags(cmd: Command): Command {
  return cmd
    .option("--auth-method <method>", "how to get a Vault token: token | approle | jwt | kubernetes | cert (default: policy cluster.auth.method, then VRB_AUTH_METHOD, then token)")
    .option("--auth-mount <path>", "auth mount path (default: policy, then VRB_AUTH_MOUNT, then the method's name)")
    .option("--auth-role <name>", "role to log in as: jwt, kubernetes, cert (default: policy, then VRB_AUTH_ROLE)")
    .option("--role-id-file <file>", "approle: file holding the role ID (default: policy, then VAULT_ROLE_ID)")
    .option("--secret-id-file <file>", "approle: file holding the secret ID or a response-wrapping token for it (default: policy, then VAULT_SECRET_ID)")
    .option("--jwt-file <file>", "jwt / kubernetes: file holding the JWT (default: policy, then VRB_JWT; kubernetes: the service account token)")
    .option("--token-file <file>", "token: file holding a token, e.g. a Vault Agent sink (used when VAULT_TOKEN is unset)")
    .option("--client-cert <file>", "client certificate (PEM) for mTLS and cert login (default: policy, then VAULT_CLIENT_CERT)")
    .option("--client-key <file>", "its private key (PEM) (default: policy, then VAULT_CLIENT_KEY)");
}

function readPolicyDoc(path: string): Record<string, unknown> {
  const doc = readPolicyYaml(path);
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(`${path}: must be a YAML mapping with cluster, destination, ...`, { field: "--policy" });
  return doc as Record<string, unknown>;
}

const objectAt = (doc: Record<string, unknown>, key: string): Record<string, unknown> => {
  const v = doc[key];
  return v && typeof v === "object" && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {};
};

const splitList = (v: string | undefined): string[] =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** Placeholder that satisfies the schema when a command has no use for node addresses; removed again. */
const NO_NODES = "http://no-nodes.invalid:1";

/**
 * The ONE place a validated BackupPolicy is built for the CLI: policy file, then flags and the
 * standard environment. Precedence per field: flag > policy file > environment.
 *   nodes:   --vault-addr ... > cluster.nodes > VRB_NODES (comma list) > VAULT_ADDR / BAO_ADDR
 *   bucket:  --bucket > destination.bucket > VRB_BUCKET;  prefix: --prefix > destination.prefix > VRB_PREFIX
 *   cluster: --cluster > cluster.name > VRB_CLUSTER;      caCert: cluster.caCert > VAULT_CACERT
 *   retention: --keep-last / --max-age-days > retention.*
 * S3 endpoint, region and credentials come from the file or the AWS SDK's own chain.
 * Bad or missing input is a ConfigError (exit 2) naming the field and the fix.
 */
export function policyFromCli(flags: PolicyFlags, env: NodeJS.ProcessEnv = process.env, opts: PolicyFromCliOptions = {}): BackupPolicy {
  const requireNodes = opts.requireNodes ?? true;
  const doc = flags.policy ? readPolicyDoc(flags.policy) : {};
  const source = flags.policy ?? "policy (from flags and environment)";
  const cluster = objectAt(doc, "cluster");
  const destination = objectAt(doc, "destination");

  let nodes: unknown = flags.vaultAddr?.length ? flags.vaultAddr : cluster.nodes;
  if (nodes === undefined) {
    const fromEnv = splitList(env.VRB_NODES);
    const single = env.VAULT_ADDR || env.BAO_ADDR;
    nodes = fromEnv.length ? fromEnv : single ? [single] : undefined;
  }
  if (Array.isArray(nodes)) nodes = nodes.map((n) => (typeof n === "string" ? normaliseAddr(n) : n));
  if (nodes === undefined || (Array.isArray(nodes) && nodes.length === 0)) {
    if (requireNodes) {
      throw new ConfigError("no Vault address: pass --vault-addr URL (repeat for each node), set VRB_NODES=URL,URL or VAULT_ADDR, or list cluster.nodes in --policy", {
        field: "cluster.nodes",
      });
    }
  }
  const realNodes = Array.isArray(nodes) && nodes.length ? nodes : undefined;
  cluster.nodes = realNodes ?? [NO_NODES];

  cluster.name = flags.cluster ?? cluster.name ?? env.VRB_CLUSTER;
  if (cluster.name === undefined) {
    throw new ConfigError("no cluster name: pass --cluster NAME, set VRB_CLUSTER, or set cluster.name in --policy", { field: "cluster.name" });
  }
  if (cluster.caCert === undefined && env.VAULT_CACERT) cluster.caCert = env.VAULT_CACERT;
  if (cluster.tlsServerName === undefined && env.VAULT_TLS_SERVER_NAME) cluster.tlsServerName = env.VAULT_TLS_SERVER_NAME;
  cluster.clientCert = flags.clientCert ?? cluster.clientCert ?? (env.VAULT_CLIENT_CERT || env.BAO_CLIENT_CERT || undefined);
  cluster.clientKey = flags.clientKey ?? cluster.clientKey ?? (env.VAULT_CLIENT_KEY || env.BAO_CLIENT_KEY || undefined);
  const auth = objectAt(cluster, "auth");
  const authFlags: [keyof PolicyFlags, string, string | undefined][] = [
    ["authMethod", "method", env.VRB_AUTH_METHOD],
    ["authMount", "mount", env.VRB_AUTH_MOUNT],
    ["authRole", "role", env.VRB_AUTH_ROLE],
    ["roleIdFile", "roleIdFile", undefined],
    ["secretIdFile", "secretIdFile", undefined],
    ["jwtFile", "jwtFile", undefined],
    ["tokenFile", "tokenFile", undefined],
  ];
  for (const [flag, field, fromEnv] of authFlags) {
    const v = (flags[flag] as string | undefined) ?? auth[field] ?? (fromEnv || undefined);
    if (v !== undefined) auth[field] = v;
  }
  // A method given by flag replaces the file's: its method-specific fields would not apply.
  if (flags.authMethod !== undefined && flags.authMethod !== (objectAt(cluster, "auth").method ?? "token")) {
    for (const [flag, field] of authFlags.slice(1)) if (flags[flag] === undefined) delete auth[field];
  }
  cluster.auth = auth;

  // --bucket and VRB_BUCKET name an S3 or Cloud Storage bucket; a directory or an Azure container is named in the policy.
  const type = destination.type ?? "s3";
  if (type === "s3" || type === "gcs") {
    destination.bucket = flags.bucket ?? destination.bucket ?? env.VRB_BUCKET;
    if (destination.bucket === undefined) {
      throw new ConfigError("no bucket: pass --bucket NAME, set VRB_BUCKET, or set destination.bucket in --policy", { field: "destination.bucket" });
    }
  } else if (flags.bucket !== undefined) {
    throw new ConfigError(`--bucket does not apply to a destination of type '${String(type)}': set its ${type === "file" ? "path" : "container"} in --policy`, {
      field: "--bucket",
    });
  }
  const prefix = flags.prefix ?? destination.prefix ?? env.VRB_PREFIX;
  if (prefix !== undefined) destination.prefix = prefix;

  const merged: Record<string, unknown> = { ...doc, cluster, destination };
  if (flags.keepLast !== undefined || flags.maxAgeDays !== undefined) {
    const retention = objectAt(doc, "retention");
    if (flags.keepLast !== undefined) retention.keepLast = flags.keepLast;
    if (flags.maxAgeDays !== undefined) retention.maxAgeDays = flags.maxAgeDays;
    merged.retention = retention;
  }
  const policy = validatePolicy(merged, source);
  if (!realNodes) policy.cluster.nodes = [];
  return policy;
}

/** `VAULT_ADDR=http://host:8200/` and `http://host:8200` name the same node; the schema wants no path. */
function normaliseAddr(addr: string): string {
  try {
    const u = new URL(addr);
    return u.pathname === "/" || u.pathname === "" ? `${u.protocol}//${u.host}` : addr;
  } catch {
    return addr;
  }
}

/**
 * The optional token of restore and drill: VAULT_TOKEN / BAO_TOKEN, then cluster.auth.tokenFile.
 * Not ~/.vault-token (it belongs to whichever cluster was logged in to last) and no login: the
 * restored cluster's auth methods only exist once the snapshot is applied.
 */
export function optionalTokenFromCli(policy: BackupPolicy, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token =
    tokenFromEnv(env) ?? (policy.cluster.auth.tokenFile ? givenToken({ env: {}, tokenFile: policy.cluster.auth.tokenFile, homeDir: "/nonexistent" })?.token : undefined);
  registerSecret(token);
  return token;
}

/** Parses a flag that must be a whole number >= min (commander argParser). */
export function intFlag(flag: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new ConfigError(`${flag} must be a whole number >= ${min}, got '${v}'`, { field: flag });
    return n;
  };
}
