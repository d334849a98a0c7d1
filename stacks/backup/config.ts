import { ConfigError, validatePolicy, type AzureContainerOptionsInput, type BackupPolicy, type GcsBucketOptionsInput } from "../../engine/index.js";
import { type LocalEnvironment } from "../../devenv/environment.js";

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
  const type = objectOr(base.destination).type;
  if (type !== undefined && type !== "s3") {
    throw new ConfigError(
      `${SOURCE}: destination.type is '${String(type)}' but vault-raft-backup:localEnvironment stands for an S3 server: remove localEnvironment (the ${String(type)} destination is used as it is), or store on s3`,
      { field: "localEnvironment" },
    );
  }
  if (!local.s3) throw new Error(`the local environment in ${local.dir} has no S3 server; start it with 'vrb local up' (S3 on)`);
  const cluster = { ...objectOr(base.cluster), nodes: local.nodes.map((n) => n.apiAddr) };
  const destination = { ...objectOr(base.destination), endpoint: local.s3.endpoint, region: local.s3.region, forcePathStyle: true };
  return validatePolicy({ ...base, cluster, destination }, `${SOURCE} (with the local environment in ${local.dir})`);
}

/** What the backup stack manages (config `vault-raft-backup:manage`). */
export type ManageMode = "all" | "snapshotsOnly";

/**
 * `all` (default): the bucket (unless `bucket.create: false`), the Vault policies and roles, and
 * the snapshot. `snapshotsOnly`: only this window's snapshot; the bucket and the Vault roles are
 * managed elsewhere, so the program needs neither the AWS nor the Vault Pulumi provider.
 */
export function manageMode(raw: string | undefined, rawPolicy: unknown, takeSnapshot: boolean): ManageMode {
  const source = "Pulumi config vault-raft-backup:manage";
  if (raw === undefined || raw === "all") return "all";
  if (raw !== "snapshotsOnly") {
    throw new ConfigError(`${source} must be 'all' (bucket, Vault roles and snapshot) or 'snapshotsOnly' (only the snapshot), not '${raw}'`, { field: "manage" });
  }
  if (!takeSnapshot) {
    throw new ConfigError(`${source} is snapshotsOnly but vault-raft-backup:takeSnapshot is false: there would be nothing to manage`, { field: "takeSnapshot" });
  }
  if (objectOr(objectOr(rawPolicy).bucket).create === true) {
    throw new ConfigError(`${source} is snapshotsOnly, so the stack creates no bucket: set the policy's bucket.create to false (or leave it out)`, {
      field: "policy.bucket.create",
    });
  }
  return "snapshotsOnly";
}

/**
 * Config `vault-raft-backup:gcs` and `vault-raft-backup:azure`: what BackupPolicy builds the Cloud
 * Storage bucket or the Azure container with (it checks each against the destination's type and
 * validates its fields). With snapshotsOnly nothing is built, so either would be ignored: refused.
 */
export function storeOptionsConfig(manage: ManageMode, gcs: unknown, azure: unknown): { gcs?: GcsBucketOptionsInput; azure?: AzureContainerOptionsInput } {
  for (const [key, value] of [
    ["gcs", gcs],
    ["azure", azure],
  ] as const) {
    if (value !== undefined && manage === "snapshotsOnly") {
      throw new ConfigError(`Pulumi config vault-raft-backup:${key} has no effect with vault-raft-backup:manage snapshotsOnly (no bucket or container is built); remove it`, {
        field: key,
      });
    }
  }
  return { gcs: gcs as GcsBucketOptionsInput | undefined, azure: azure as AzureContainerOptionsInput | undefined };
}

const WINDOW_ID = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** Config `vault-raft-backup:window`: a schedule window id, or undefined for the window containing now. */
export function windowConfig(raw: string | undefined): string | undefined {
  if (raw === undefined || WINDOW_ID.test(raw)) return raw;
  throw new ConfigError(
    `Pulumi config vault-raft-backup:window must be a schedule window id like '2024-05-01T06:00:00Z', not '${raw}' (quote it in the stack's YAML file: unquoted, YAML reads it as a timestamp)`,
    { field: "window" },
  );
}
