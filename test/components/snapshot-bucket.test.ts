import { beforeAll, describe, expect, it } from "vitest";

import { type IamPolicyDocument } from "../../engine/access/iam.js";
import { named, recordResources, settle, valueOf, type Registered } from "./mocks.js";

// Mocks first, then the components (they register against whatever monitor is installed).
const registered: Registered[] = recordResources();
let components: typeof import("../../components/index.js");
beforeAll(async () => {
  components = await import("../../components/index.js");
});

const S3 = "aws:s3/";
const T = {
  bucket: "aws:s3/bucket:Bucket",
  versioning: `${S3}bucketVersioning:BucketVersioning`,
  lock: `${S3}bucketObjectLockConfiguration:BucketObjectLockConfiguration`,
  sse: `${S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration`,
  pab: `${S3}bucketPublicAccessBlock:BucketPublicAccessBlock`,
  ownership: `${S3}bucketOwnershipControls:BucketOwnershipControls`,
  policy: `${S3}bucketPolicy:BucketPolicy`,
  lifecycle: `${S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration`,
  replication: `${S3}bucketReplicationConfig:BucketReplicationConfig`,
  logging: `${S3}bucketLogging:BucketLogging`,
  key: "aws:kms/key:Key",
};

interface LifecycleRule {
  id: string;
  status: string;
  filter?: { prefix?: string };
  expiration?: { days?: number; expiredObjectDeleteMarker?: boolean };
  noncurrentVersionExpiration?: { noncurrentDays: number };
  abortIncompleteMultipartUpload?: { daysAfterInitiation: number };
  transitions?: { days: number; storageClass: string }[];
}

function rules(r: Registered): LifecycleRule[] {
  return r.inputs.rules as LifecycleRule[];
}

describe("SnapshotBucket with no options: safe defaults", () => {
  const name = "plain";
  beforeAll(async () => {
    const b = new components.SnapshotBucket(name, { destination: { bucket: "acme-vault-snapshots" } });
    await valueOf(b.writerPolicyJson);
    await settle(registered);
  });

  it("creates the bucket with object lock at creation, never force-destroyed, and versioning on", () => {
    const bucket = named(registered, T.bucket, name);
    expect(bucket.inputs.bucket).toBe("acme-vault-snapshots");
    expect(bucket.inputs.objectLockEnabled).toBe(true);
    expect(bucket.inputs.forceDestroy).toBe(false);
    expect(named(registered, T.versioning, `${name}-versioning`).inputs.versioningConfiguration).toEqual({ status: "Enabled" });
  });

  it("locks every new version by default: GOVERNANCE for 30 days when the policy sets no lock", () => {
    const lock = named(registered, T.lock, `${name}-lock`).inputs;
    expect(lock.objectLockEnabled).toBe("Enabled");
    expect(lock.rule).toEqual({ defaultRetention: { mode: "GOVERNANCE", days: 30 } });
  });

  it("encrypts with SSE-KMS and a bucket key, under a created key that rotates", () => {
    const key = named(registered, T.key, `${name}-key`).inputs;
    expect(key.enableKeyRotation).toBe(true);
    expect(key.deletionWindowInDays).toBe(30);
    const sse = named(registered, T.sse, `${name}-encryption`).inputs.rules as {
      applyServerSideEncryptionByDefault: { sseAlgorithm: string; kmsMasterKeyId: string };
      bucketKeyEnabled: boolean;
    }[];
    expect(sse).toHaveLength(1);
    expect(sse[0]!.applyServerSideEncryptionByDefault).toEqual({ sseAlgorithm: "aws:kms", kmsMasterKeyId: `arn:aws:kms:us-east-1:111122223333:key/${name}-key` });
    expect(sse[0]!.bucketKeyEnabled).toBe(true);
  });

  it("blocks all public access and enforces bucket-owner ownership (no ACLs)", () => {
    const pab = named(registered, T.pab, `${name}-public-access`).inputs;
    expect([pab.blockPublicAcls, pab.blockPublicPolicy, pab.ignorePublicAcls, pab.restrictPublicBuckets]).toEqual([true, true, true, true]);
    expect(named(registered, T.ownership, `${name}-ownership`).inputs.rule).toEqual({ objectOwnership: "BucketOwnerEnforced" });
  });

  it("has a bucket policy that denies plain HTTP and uploads with other encryption or another key", () => {
    const doc = JSON.parse(named(registered, T.policy, `${name}-policy`).inputs.policy as string) as IamPolicyDocument;
    const tls = doc.Statement.find((s) => s.Condition?.Bool?.["aws:SecureTransport"] === false);
    expect(tls).toMatchObject({ Effect: "Deny", Principal: "*", Action: ["s3:*"] });
    expect(tls!.Resource).toEqual(["arn:aws:s3:::acme-vault-snapshots", "arn:aws:s3:::acme-vault-snapshots/*"]);
    const wrongKey = doc.Statement.find((s) => s.Condition?.StringNotEquals?.["s3:x-amz-server-side-encryption-aws-kms-key-id"]);
    expect(wrongKey).toMatchObject({ Effect: "Deny", Action: ["s3:PutObject"] });
    expect(wrongKey!.Condition!.StringNotEquals!["s3:x-amz-server-side-encryption-aws-kms-key-id"]).toBe(`arn:aws:kms:us-east-1:111122223333:key/${name}-key`);
    const notKms = doc.Statement.find((s) => s.Condition?.StringNotEquals?.["s3:x-amz-server-side-encryption"]);
    expect(notKms).toMatchObject({ Effect: "Deny", Action: ["s3:PutObject"] });
    expect(notKms!.Condition!.StringNotEquals!["s3:x-amz-server-side-encryption"]).toBe("aws:kms");
    expect(doc.Statement.some((s) => s.Effect === "Deny" && s.Condition?.Null?.["s3:x-amz-server-side-encryption-customer-algorithm"] === false)).toBe(true);
    expect(doc.Statement.every((s) => s.Effect === "Deny")).toBe(true);
  });

  it("expires snapshots after the lock window plus a margin, then noncurrent versions, and aborts stale uploads within 1-7 days", () => {
    const lc = rules(named(registered, T.lifecycle, `${name}-lifecycle`));
    const expire = lc.find((r) => r.id === "expire-snapshots")!;
    expect(expire.status).toBe("Enabled");
    expect(expire.expiration!.days).toBe(37);
    expect(expire.noncurrentVersionExpiration!.noncurrentDays).toBe(7);
    const abort = lc.find((r) => r.abortIncompleteMultipartUpload)!;
    expect(abort.status).toBe("Enabled");
    expect(abort.abortIncompleteMultipartUpload!.daysAfterInitiation).toBeGreaterThanOrEqual(1);
    expect(abort.abortIncompleteMultipartUpload!.daysAfterInitiation).toBeLessThanOrEqual(7);
    expect(lc.some((r) => r.expiration?.expiredObjectDeleteMarker === true)).toBe(true);
  });

  it("builds no replication or logging unless asked", () => {
    expect(registered.filter((r) => r.type === T.replication || r.type === T.logging)).toEqual([]);
  });
});

describe("SnapshotBucket with the policy's options", () => {
  const name = "full";
  let writer: IamPolicyDocument;
  beforeAll(async () => {
    const b = new components.SnapshotBucket(name, {
      destination: { bucket: "acme-prod-vault", prefix: "vault/", region: "eu-west-1", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/given" },
      objectLock: { mode: "COMPLIANCE", days: 35 },
      retention: { keepLast: 40, maxAgeDays: 45 },
      bucket: {
        abortIncompleteUploadDays: 3,
        transition: { days: 30, storageClass: "GLACIER_IR" },
        replicaRegion: "eu-central-1",
        accessLog: { bucket: "acme-access-logs" },
      },
    });
    writer = JSON.parse(await valueOf(b.writerPolicyJson)) as IamPolicyDocument;
    await settle(registered);
  });

  it("uses the given key instead of creating one", () => {
    expect(registered.some((r) => r.type === T.key && r.name === `${name}-key`)).toBe(false);
    const sse = named(registered, T.sse, `${name}-encryption`).inputs.rules as { applyServerSideEncryptionByDefault: { kmsMasterKeyId: string } }[];
    expect(sse[0]!.applyServerSideEncryptionByDefault.kmsMasterKeyId).toBe("arn:aws:kms:eu-west-1:111122223333:key/given");
    expect(writer.Statement.find((s) => s.Sid === "EncryptWithTheBucketKey")!.Resource).toBe("arn:aws:kms:eu-west-1:111122223333:key/given");
  });

  it("sets the policy's COMPLIANCE retention and the region", () => {
    expect(named(registered, T.lock, `${name}-lock`).inputs.rule).toEqual({ defaultRetention: { mode: "COMPLIANCE", days: 35 } });
    expect(named(registered, T.bucket, name).inputs.region).toBe("eu-west-1");
  });

  it("expires after the longer of lock and max age, scoped to the prefix, with the transition", () => {
    const lc = rules(named(registered, T.lifecycle, `${name}-lifecycle`));
    const expire = lc.find((r) => r.id === "expire-snapshots")!;
    expect(expire.filter).toEqual({ prefix: "vault/" });
    expect(expire.expiration!.days).toBe(52);
    expect(expire.transitions).toEqual([{ days: 30, storageClass: "GLACIER_IR" }]);
    expect(lc.find((r) => r.abortIncompleteMultipartUpload)!.abortIncompleteMultipartUpload!.daysAfterInitiation).toBe(3);
  });

  it("replicates to a locked, encrypted bucket in the second region, without replicating deletes", () => {
    const replica = named(registered, T.bucket, `${name}-replica`).inputs;
    expect(replica).toMatchObject({ bucket: "acme-prod-vault-replica", region: "eu-central-1", objectLockEnabled: true });
    expect(named(registered, T.key, `${name}-replica-key`).inputs).toMatchObject({ region: "eu-central-1", enableKeyRotation: true });
    expect(named(registered, T.lock, `${name}-replica-lock`).inputs.rule).toEqual({ defaultRetention: { mode: "COMPLIANCE", days: 35 } });
    expect(named(registered, T.pab, `${name}-replica-public-access`).inputs.restrictPublicBuckets).toBe(true);
    const rep = named(registered, T.replication, `${name}-replication`).inputs;
    const rule = (rep.rules as Record<string, unknown>[])[0]!;
    expect(rule).toMatchObject({
      status: "Enabled",
      filter: { prefix: "vault/" },
      deleteMarkerReplication: { status: "Disabled" },
      sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: "Enabled" } },
      destination: {
        bucket: "arn:aws:s3:::acme-prod-vault-replica",
        encryptionConfiguration: { replicaKmsKeyId: `arn:aws:kms:eu-central-1:111122223333:key/${name}-replica-key` },
      },
    });
    expect(rep.role).toBe(`arn:aws:iam::111122223333:role/${name}-replication`);
  });

  it("logs access to the given log bucket", () => {
    expect(named(registered, T.logging, `${name}-logging`).inputs).toMatchObject({ targetBucket: "acme-access-logs", targetPrefix: "s3-access/acme-prod-vault/" });
  });
});

describe("SnapshotBucket rejects bad input before registering anything", () => {
  it.each([
    [{ destination: { bucket: "Bad_Bucket" } }, /destination\.bucket must be a valid S3 bucket name/],
    [{ destination: { bucket: "b-ok", kmsKeyId: "alias/snapshots" } }, /destination\.kmsKeyId must be a key ARN/],
    [{ destination: { bucket: "b-ok" }, bucket: { abortIncompleteUploadDays: 30 } }, /bucket\.abortIncompleteUploadDays must be between 1 and 7 days/],
    [
      { destination: { bucket: "b-ok" }, objectLock: { mode: "COMPLIANCE", days: 90 }, bucket: { expireAfterDays: 30 } },
      /bucket\.expireAfterDays \(30\) must be at least objectLock\.days \(90\)/,
    ],
    [{ destination: { bucket: "b-ok", region: "eu-west-1" }, bucket: { replicaRegion: "eu-west-1" } }, /bucket\.replicaRegion must differ from destination\.region/],
    [{ destination: { bucket: "b-ok" }, bucket: { transition: { days: 10, storageClass: "STANDARD_IA" } } }, /bucket\.transition\.days must be at least 30 for STANDARD_IA/],
    [{ destination: { bucket: "b-ok" }, bucket: { replicaRgion: "eu-west-1" } }, /unknown field 'bucket\.replicaRgion'/],
  ])("%j", async (args, message) => {
    const before = registered.length;
    expect(() => new components.SnapshotBucket("bad", args as never)).toThrow(message);
    await settle(registered);
    expect(registered.length).toBe(before);
  });
});
