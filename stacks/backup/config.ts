import { validatePolicy, type BackupPolicy, type LocalEnvironment } from "../../engine/index.js";

const SOURCE = "Pulumi config vault-raft-backup:policy";

function objectOr(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * The stack's policy: config `vault-raft-backup:policy`, validated with the one schema. With a
 * local environment (`vrb local up`), its node and S3 addresses replace the placeholders: they
 * get fresh ports on every start, so they cannot live in a committed YAML file.
 */
export function policyForStack(raw: unknown, local?: LocalEnvironment): BackupPolicy {
  if (!local) return validatePolicy(raw, SOURCE);
  const base = objectOr(raw);
  if (!local.s3) throw new Error(`the local environment in ${local.dir} has no S3 server; start it with 'vrb local up' (S3 on)`);
  const cluster = { ...objectOr(base.cluster), nodes: local.nodes.map((n) => n.apiAddr) };
  const destination = { ...objectOr(base.destination), endpoint: local.s3.endpoint, region: local.s3.region, forcePathStyle: true };
  return validatePolicy({ ...base, cluster, destination }, `${SOURCE} (with the local environment in ${local.dir})`);
}
