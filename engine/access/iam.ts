/**
 * IAM and bucket policy documents for the snapshot bucket, as pure functions: the Pulumi
 * components render exactly these, and the tests read them without any cloud.
 */

export type IamConditionValue = string | string[] | boolean;

export interface IamStatement {
  Sid: string;
  Effect: "Allow" | "Deny";
  Principal?: "*" | { Service: string } | { AWS: string | string[] };
  Action: string[];
  /** Absent only in trust policies, where the role itself is the resource. */
  Resource?: string | string[];
  Condition?: Record<string, Record<string, IamConditionValue>>;
}

export interface IamPolicyDocument {
  Version: "2012-10-17";
  Statement: IamStatement[];
}

export interface BucketScope {
  /** `arn:aws:s3:::<bucket>` */
  bucketArn: string;
  /** Key prefix of the snapshots ('' or segments ending in '/'). */
  prefix: string;
  /** ARN of the KMS key that encrypts the bucket; omitted for a bucket without SSE-KMS (local servers). */
  kmsKeyArn?: string;
}

/** Every action that destroys or unprotects stored data; the writer is denied them explicitly. */
export const DESTRUCTIVE_S3_ACTIONS = [
  "s3:DeleteObject",
  "s3:DeleteObjectVersion",
  "s3:DeleteObjectTagging",
  "s3:DeleteObjectVersionTagging",
  "s3:BypassGovernanceRetention",
  "s3:PutObjectLegalHold",
  "s3:PutBucketObjectLockConfiguration",
  "s3:PutLifecycleConfiguration",
  "s3:PutBucketPolicy",
  "s3:DeleteBucketPolicy",
  "s3:PutBucketVersioning",
  "s3:DeleteBucket",
];

export function bucketArnOf(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}

function objectsUnder(scope: BucketScope): string {
  return `${scope.bucketArn}/${scope.prefix}*`;
}

/** A listing of the bucket (its objects, or their versions) that stops at the prefix. */
function listUnderPrefix(scope: BucketScope, action = "s3:ListBucket", sid = "ListSnapshotsUnderPrefix"): IamStatement {
  return {
    Sid: sid,
    Effect: "Allow",
    Action: [action],
    Resource: scope.bucketArn,
    // An empty prefix means the whole bucket; otherwise listing stops at the prefix.
    ...(scope.prefix ? { Condition: { StringLike: { "s3:prefix": [`${scope.prefix}*`] } } } : {}),
  };
}

/** Replacing the clusters' status objects, to record runs: a conditional PutObject (If-Match / If-None-Match) needs no other permission. */
function writeStatusObjects(scope: BucketScope, sid: string): IamStatement {
  return { Sid: sid, Effect: "Allow", Action: ["s3:PutObject"], Resource: statusObjectsUnder(scope) };
}

/** Reading objects with the bucket's KMS key, and GenerateDataKey only to encrypt the status object (the bucket policy wants SSE-KMS with this key). */
function readWithTheBucketKey(scope: BucketScope): IamStatement[] {
  return scope.kmsKeyArn ? [{ Sid: "UseTheBucketKey", Effect: "Allow", Action: ["kms:Decrypt", "kms:GenerateDataKey"], Resource: scope.kmsKeyArn }] : [];
}

/** An explicit Deny of `actions` on the bucket and everything in it: it wins over any Allow another attached policy adds. */
function denyOnTheBucket(scope: BucketScope, sid: string, actions: string[]): IamStatement {
  return { Sid: sid, Effect: "Deny", Action: actions, Resource: [scope.bucketArn, `${scope.bucketArn}/*`] };
}

/** Listing the bucket's unfinished multipart uploads: the orphans of killed runs are found and reported by them. */
function listUnfinishedUploads(scope: BucketScope, sid: string): IamStatement {
  return { Sid: sid, Effect: "Allow", Action: ["s3:ListBucketMultipartUploads"], Resource: scope.bucketArn };
}

/**
 * The backup identity: uploads snapshots and manifests, sets their retention, lists, reads back
 * what it wrote, and reads and replaces its cluster's status object (a conditional PutObject:
 * nothing beyond PutObject and GetObject, no delete). It can never
 * delete, shorten a lock (BypassGovernanceRetention) or loosen the bucket: an explicit Deny wins
 * over any Allow another attached policy might add.
 */
export function writerPolicyDocument(scope: BucketScope): IamPolicyDocument {
  const statements: IamStatement[] = [
    listUnderPrefix(scope),
    listUnfinishedUploads(scope, "CleanUpOwnFailedUploads"),
    {
      Sid: "PutSnapshotsAndRetention",
      Effect: "Allow",
      // AbortMultipartUpload drops the parts of an upload that failed; it cannot touch stored objects.
      Action: ["s3:PutObject", "s3:PutObjectRetention", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      Resource: objectsUnder(scope),
    },
    {
      Sid: "ReadBackOwnUploads",
      Effect: "Allow",
      // The backup HEADs what it wrote to confirm encryption and lock, and `pulumi refresh` re-checks
      // stored snapshots; S3 authorises HEAD as GetObject(Version).
      Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention"],
      Resource: objectsUnder(scope),
    },
    denyOnTheBucket(scope, "NeverDeleteOrUnlock", DESTRUCTIVE_S3_ACTIONS),
  ];
  if (scope.kmsKeyArn) {
    statements.push({
      Sid: "EncryptWithTheBucketKey",
      Effect: "Allow",
      // Multipart uploads under SSE-KMS need Decrypt as well (S3 reads the data key to assemble parts).
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: scope.kmsKeyArn,
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

/**
 * Every cluster's status object under the prefix (`<prefix><cluster>/vrb-status.json`, docs/status.md).
 * IAM's `*` spans `/`, so one pattern covers every cluster and nothing but status objects.
 */
export function statusObjectsUnder(scope: BucketScope): string {
  return `${scope.bucketArn}/${scope.prefix}*/vrb-status.json`;
}

/**
 * The restore identity: reads snapshots, manifests, their retention and legal holds (what
 * `vrb list` shows) under the prefix. The one
 * thing it writes is the clusters' status objects, so restores and drills are on record; it
 * cannot write a snapshot, a manifest or anything else.
 */
export function restorerPolicyDocument(scope: BucketScope): IamPolicyDocument {
  const statements: IamStatement[] = [
    listUnderPrefix(scope),
    // `vrb list`, `vrb status` and the exporter report unfinished uploads (orphans of killed runs).
    listUnfinishedUploads(scope, "FindUnfinishedUploads"),
    {
      Sid: "ReadSnapshots",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
      Resource: objectsUnder(scope),
    },
    writeStatusObjects(scope, "RecordRestoreAndDrillStatus"),
    ...readWithTheBucketKey(scope),
  ];
  return { Version: "2012-10-17", Statement: statements };
}

/**
 * What the retention identity (`vrb prune`) is denied: everything destructive but deleting object
 * versions, and setting locks. It deletes what retention says and the locks allow, and can never
 * shorten a lock, lift a hold or loosen the bucket to delete more.
 */
export const PRUNER_DENIED_S3_ACTIONS = [...DESTRUCTIVE_S3_ACTIONS.filter((a) => a !== "s3:DeleteObject" && a !== "s3:DeleteObjectVersion"), "s3:PutObjectRetention"];

/**
 * The retention identity (`vrb prune`, run as its own job): lists the snapshots and their versions
 * under the prefix, reads the manifests and each version's lock, deletes the versions retention
 * drops, aborts unfinished uploads, and records the run in the clusters' status objects. It writes
 * no snapshot: the writer may not delete, and this one may not write, so no single identity can
 * replace the history.
 */
export function prunerPolicyDocument(scope: BucketScope): IamPolicyDocument {
  const statements: IamStatement[] = [
    listUnderPrefix(scope),
    listUnderPrefix(scope, "s3:ListBucketVersions", "ListSnapshotVersionsUnderPrefix"),
    listUnfinishedUploads(scope, "FindUnfinishedUploads"),
    {
      Sid: "ReadAndDeleteSnapshotVersions",
      Effect: "Allow",
      // A HEAD shows a version's lock only to a caller that may read it (GetObjectRetention,
      // GetObjectLegalHold); without them a locked version would look deletable and its delete fail.
      Action: ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload"],
      Resource: objectsUnder(scope),
    },
    writeStatusObjects(scope, "RecordPruneStatus"),
    denyOnTheBucket(scope, "NeverUnlockOrLoosen", PRUNER_DENIED_S3_ACTIONS),
    ...readWithTheBucketKey(scope),
  ];
  return { Version: "2012-10-17", Statement: statements };
}

/**
 * The incident responder's addition (`vrb hold` / `vrb release`): set and clear S3 Object Lock
 * legal holds on snapshots and the objects beside them, and read them back. Not part of the
 * writer (which denies s3:PutObjectLegalHold: a writer that could release holds could unprotect
 * evidence) nor of the restorer; attach it to the operators' role, next to the restorer policy.
 */
export function legalHoldPolicyDocument(scope: BucketScope): IamPolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      listUnderPrefix(scope),
      {
        Sid: "HoldAndReleaseSnapshots",
        Effect: "Allow",
        // HEAD (GetObject) finds each object's current version and reads the hold back.
        Action: ["s3:PutObjectLegalHold", "s3:GetObjectLegalHold", "s3:GetObject", "s3:GetObjectVersion"],
        Resource: objectsUnder(scope),
      },
    ],
  };
}

/**
 * The bucket's own policy: TLS only for everyone, and no upload encrypted any other way than
 * with the bucket's KMS key. Uploads that name no encryption get the bucket default (SSE-KMS
 * with that key), so they are allowed; naming AES256, another key or SSE-C is denied.
 */
export function bucketPolicyDocument(scope: Required<Pick<BucketScope, "bucketArn">> & { kmsKeyArn?: string }): IamPolicyDocument {
  const everything = [scope.bucketArn, `${scope.bucketArn}/*`];
  const objects = `${scope.bucketArn}/*`;
  const statements: IamStatement[] = [
    {
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: ["s3:*"],
      Resource: everything,
      Condition: { Bool: { "aws:SecureTransport": false } },
    },
    {
      Sid: "DenyCustomerProvidedKeys",
      Effect: "Deny",
      Principal: "*",
      Action: ["s3:PutObject"],
      Resource: objects,
      Condition: { Null: { "s3:x-amz-server-side-encryption-customer-algorithm": false } },
    },
  ];
  if (scope.kmsKeyArn) {
    statements.push(
      {
        Sid: "DenyEncryptionOtherThanKms",
        Effect: "Deny",
        Principal: "*",
        Action: ["s3:PutObject"],
        Resource: objects,
        Condition: {
          StringNotEquals: { "s3:x-amz-server-side-encryption": "aws:kms" },
          Null: { "s3:x-amz-server-side-encryption": false },
        },
      },
      {
        Sid: "DenyWrongKmsKey",
        Effect: "Deny",
        Principal: "*",
        Action: ["s3:PutObject"],
        Resource: objects,
        Condition: {
          StringNotEquals: { "s3:x-amz-server-side-encryption-aws-kms-key-id": scope.kmsKeyArn },
          Null: { "s3:x-amz-server-side-encryption-aws-kms-key-id": false },
        },
      },
    );
  }
  return { Version: "2012-10-17", Statement: statements };
}

/** Trust policy of the role S3 assumes to replicate. */
export function replicationTrustPolicyDocument(): IamPolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Sid: "S3Replicates", Effect: "Allow", Principal: { Service: "s3.amazonaws.com" }, Action: ["sts:AssumeRole"] }],
  };
}

/**
 * What S3 may do while replicating to the off-site copy: read versions (with their lock) from the
 * source, write replicas to the destination. Deletes are not replicated, so a delete on the
 * source never reaches the copy.
 */
export function replicationPolicyDocument(args: {
  sourceBucketArn: string;
  destinationBucketArn: string;
  sourceKmsKeyArn: string;
  destinationKmsKeyArn: string;
}): IamPolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ReadSourceConfiguration",
        Effect: "Allow",
        Action: ["s3:GetReplicationConfiguration", "s3:ListBucket"],
        Resource: args.sourceBucketArn,
      },
      {
        Sid: "ReadSourceVersions",
        Effect: "Allow",
        Action: ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging", "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
        Resource: `${args.sourceBucketArn}/*`,
      },
      {
        Sid: "WriteReplicas",
        Effect: "Allow",
        Action: ["s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"],
        Resource: `${args.destinationBucketArn}/*`,
      },
      { Sid: "DecryptSource", Effect: "Allow", Action: ["kms:Decrypt"], Resource: args.sourceKmsKeyArn },
      { Sid: "EncryptReplica", Effect: "Allow", Action: ["kms:Encrypt", "kms:GenerateDataKey"], Resource: args.destinationKmsKeyArn },
    ],
  };
}
