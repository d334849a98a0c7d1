import { ConfigError } from "../errors.js";
import { accessOptionsSchema, bucketOptionsSchema, validatePart, type AccessOptionsInput, type BackupPolicy, type BucketOptions, type BucketOptionsInput } from "../policy.js";
import { parseDuration } from "../schedule.js";
import { s3DestinationOf } from "../storage/destination.js";
import { restorePolicyHcl, snapshotPolicyHcl } from "./vault-policies.js";

/**
 * Resolves the `bucket:` and `access:` sections of a validated policy into exactly what the
 * Pulumi components build: defaults filled, cross-field rules checked, errors naming the field.
 * No Pulumi here, so the rules are one implementation, testable on their own.
 */

export type LockMode = "GOVERNANCE" | "COMPLIANCE";

export interface BucketPlan {
  /** false: the bucket exists already; the components only describe it. */
  create: boolean;
  name: string;
  prefix: string;
  region?: string;
  /** Default retention of every new object version. */
  lock: { mode: LockMode; days: number };
  expireAfterDays: number;
  noncurrentExpireAfterDays: number;
  abortIncompleteUploadDays: number;
  transition?: { days: number; storageClass: string };
  /** A given key ARN; absent means the component creates a key (with rotation). */
  kmsKeyArn?: string;
  replica?: { region: string; bucket: string };
  accessLog?: { bucket: string; prefix: string };
}

/** Used when the policy sets no `objectLock`: GOVERNANCE can still be lifted by an admin, COMPLIANCE never. */
export const DEFAULT_LOCK = { mode: "GOVERNANCE", days: 30 } as const;
/** Days a current version outlives the retention window before the lifecycle backstop expires it. */
export const EXPIRY_MARGIN_DAYS = 7;

function fail(field: string, text: string): never {
  throw new ConfigError(`policy: ${field} ${text}`, { field });
}

export function bucketPlan(policy: Pick<BackupPolicy, "destination" | "objectLock" | "retention"> & { bucket?: BucketOptionsInput }): BucketPlan {
  const opts: BucketOptions = validatePart(bucketOptionsSchema, policy.bucket ?? {}, ["bucket"]);
  const lock = policy.objectLock ?? DEFAULT_LOCK;
  const maxAge = policy.retention.maxAgeDays ?? 0;
  const expireAfterDays = opts.expireAfterDays ?? Math.max(lock.days, maxAge) + EXPIRY_MARGIN_DAYS;
  if (expireAfterDays < lock.days) {
    fail("bucket.expireAfterDays", `(${expireAfterDays}) must be at least objectLock.days (${lock.days}): a locked snapshot cannot expire; raise it or leave it unset`);
  }
  if (expireAfterDays < maxAge) {
    fail("bucket.expireAfterDays", `(${expireAfterDays}) must be at least retention.maxAgeDays (${maxAge}), or the lifecycle deletes snapshots retention keeps`);
  }
  if (opts.transition) {
    if (opts.transition.days >= expireAfterDays) {
      fail("bucket.transition.days", `(${opts.transition.days}) must be less than the expiry (${expireAfterDays} days), or nothing ever transitions`);
    }
    if ((opts.transition.storageClass === "STANDARD_IA" || opts.transition.storageClass === "ONEZONE_IA") && opts.transition.days < 30) {
      fail("bucket.transition.days", `must be at least 30 for ${opts.transition.storageClass} (an S3 rule)`);
    }
  }
  const destination = s3DestinationOf(policy.destination, "the SnapshotBucket component (an S3 bucket)");
  const kms = destination.kmsKeyId;
  if (opts.create && kms !== undefined && !kms.startsWith("arn:")) {
    fail("destination.kmsKeyId", "must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) when the bucket is created: the bucket and IAM policies compare against the ARN");
  }
  if (opts.replicaRegion && opts.replicaRegion === destination.region) {
    fail("bucket.replicaRegion", `must differ from destination.region (${destination.region}); the copy is meant to survive a region outage`);
  }
  if (!opts.create) {
    for (const k of ["replicaRegion", "replicaBucket", "transition", "accessLog", "expireAfterDays"] as const) {
      if (opts[k] !== undefined) fail(`bucket.${k}`, "has no effect with bucket.create: false (the bucket is not managed here); remove it");
    }
  }
  if (opts.replicaBucket && !opts.replicaRegion) fail("bucket.replicaBucket", "needs bucket.replicaRegion (the region of the off-site copy)");
  let replica: BucketPlan["replica"];
  if (opts.replicaRegion) {
    const bucket = opts.replicaBucket ?? `${destination.bucket}-replica`;
    if (bucket.length > 63) fail("bucket.replicaBucket", `is needed: '${bucket}' is longer than 63 characters; name the replica bucket`);
    if (bucket === destination.bucket) fail("bucket.replicaBucket", "must differ from destination.bucket");
    replica = { region: opts.replicaRegion, bucket };
  }
  return {
    create: opts.create,
    name: destination.bucket,
    prefix: destination.prefix,
    region: destination.region,
    lock: { mode: lock.mode, days: lock.days },
    expireAfterDays,
    noncurrentExpireAfterDays: opts.noncurrentExpireAfterDays,
    abortIncompleteUploadDays: opts.abortIncompleteUploadDays,
    transition: opts.transition,
    kmsKeyArn: kms,
    replica,
    accessLog: opts.accessLog,
  };
}

export interface VaultNames {
  snapshotPolicy: string;
  restorePolicy: string;
  tokenRole: string;
  appRole: string;
  ciRole: string;
}

export interface AccessPlan {
  names: VaultNames;
  snapshotPolicyHcl: string;
  restorePolicyHcl: string;
  tokenRole: { periodSeconds: number; explicitMaxTtlSeconds?: number; boundCidrs?: string[] };
  appRole?: { mount: string; createMount: boolean; secretIdTtlSeconds: number; secretIdBoundCidrs?: string[]; boundCidrs?: string[] };
  ci?: {
    mount: string;
    createMount: boolean;
    issuer: string;
    repository: string;
    branch: string;
    audience: string;
    /** Claims a CI token must carry, exactly (GitHub Actions claim names). */
    boundClaims: { repository: string; ref: string };
    userClaim: string;
    /** CI tokens are short-lived: one job, not a standing credential. */
    tokenTtlSeconds: number;
    tokenMaxTtlSeconds: number;
  };
}

const seconds = (d: string) => Math.round(parseDuration(d) / 1000);

/** The access plan for one cluster; `canaries` come from the policy's `verify.canaries`. */
export function accessPlan(policy: { cluster: { name: string }; access?: AccessOptionsInput; verify?: BackupPolicy["verify"] }): AccessPlan {
  const opts = validatePart(accessOptionsSchema, policy.access ?? {}, ["access"]);
  const prefix = opts.namePrefix ?? `vrb-${policy.cluster.name}`;
  const names: VaultNames = {
    snapshotPolicy: `${prefix}-snapshot`,
    restorePolicy: `${prefix}-restore`,
    tokenRole: `${prefix}-snapshot`,
    appRole: `${prefix}-snapshot`,
    ciRole: `${prefix}-snapshot-ci`,
  };
  const periodSeconds = seconds(opts.tokenRole.period);
  const explicitMaxTtlSeconds = opts.tokenRole.maxTtl === undefined ? undefined : seconds(opts.tokenRole.maxTtl);
  if (explicitMaxTtlSeconds !== undefined && explicitMaxTtlSeconds < periodSeconds) {
    fail(
      "access.tokenRole.maxTtl",
      `(${opts.tokenRole.maxTtl}) must be at least access.tokenRole.period (${opts.tokenRole.period}), or a token dies before its first renewal is due`,
    );
  }
  const plan: AccessPlan = {
    names,
    snapshotPolicyHcl: snapshotPolicyHcl(),
    restorePolicyHcl: restorePolicyHcl({ canaries: policy.verify?.canaries }),
    tokenRole: { periodSeconds, explicitMaxTtlSeconds, boundCidrs: opts.tokenRole.boundCidrs },
  };
  if (opts.appRole) {
    plan.appRole = {
      mount: opts.appRole.mount,
      createMount: opts.appRole.createMount,
      secretIdTtlSeconds: seconds(opts.appRole.secretIdTtl),
      secretIdBoundCidrs: opts.appRole.secretIdBoundCidrs,
      boundCidrs: opts.appRole.boundCidrs,
    };
  }
  if (opts.ci) {
    const owner = opts.ci.repository.split("/")[0]!;
    plan.ci = {
      mount: opts.ci.mount,
      createMount: opts.ci.createMount,
      issuer: opts.ci.issuer,
      repository: opts.ci.repository,
      branch: opts.ci.branch,
      audience: opts.ci.audience ?? `https://github.com/${owner}`,
      boundClaims: { repository: opts.ci.repository, ref: `refs/heads/${opts.ci.branch}` },
      userClaim: "repository",
      tokenTtlSeconds: 3600,
      tokenMaxTtlSeconds: 6 * 3600,
    };
  }
  return plan;
}
