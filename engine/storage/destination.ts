import { z } from "zod";
import { ConfigError } from "../errors.js";

// Where snapshots are stored: one schema per store type, told apart by `type` (`s3` when absent, so
// every policy written before other stores existed validates unchanged). Credentials never go here:
// each store takes them the way its own SDK does (docs/storage-*.md).

export const s3BucketNameSchema = z
  .string({ required_error: "is required; name the S3 bucket that holds the snapshots" })
  .regex(
    /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    "must be a valid S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
  );

/** A key prefix: '' or path segments each ending in '/'. */
export const prefixSchema = z.string().regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, "must be empty or path segments each ending in '/', e.g. 'vault/' (no leading '/')");

export const awsRegionSchema = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region like 'us-east-1'");

/** A destination's name: `primary` for the policy's `destination` unless it says otherwise. */
export const destinationNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "must be lowercase letters, digits and '-', at most 32 characters, e.g. 'offsite'")
  .describe("The destination's name in reports, metrics and `--destination NAME` (default: `primary` for `destination`).");

const prefix = prefixSchema.default("").describe("Key prefix: snapshots are stored under `<prefix><cluster>/YYYY/MM/DD/`.");

const timeoutSeconds = z
  .number()
  .int("must be a whole number of seconds")
  .min(1, "must be at least 1 second")
  .max(3600, "must be at most 3600 seconds")
  .optional()
  .describe(
    "Seconds a request to the store (a listing, a HEAD, a manifest or status read or write, a delete, the start of a download) may go unanswered before the command gives up on the store and says so (default 60). Transfers are watched for stalls instead.",
  );

export const s3DestinationSchema = z
  .object({
    type: z.literal("s3").optional().describe("The store: `s3` (default; AWS S3 or an S3-compatible server), `file`, `gcs` or `azure`."),
    name: destinationNameSchema.optional(),
    bucket: s3BucketNameSchema.describe("The S3 bucket that holds the snapshots and their manifests."),
    prefix,
    timeoutSeconds,
    region: awsRegionSchema.optional().describe("The bucket's AWS region (default: the AWS SDK's chain, e.g. AWS_REGION)."),
    endpoint: z
      .string()
      .url("must be a URL like https://s3.example.com")
      .optional()
      .describe("S3 API endpoint of a store other than AWS (SeaweedFS, MinIO, ...); default AWS_ENDPOINT_URL_S3, else AWS."),
    forcePathStyle: z.boolean().optional().describe("Path-style requests (endpoint/bucket/key); default: true when an endpoint is set."),
    kmsKeyId: z
      .string()
      .min(1, "must be a KMS key ARN, id or alias")
      .optional()
      .describe("KMS key (ARN, id or alias) for SSE-KMS of every object; the Pulumi SnapshotBucket uses it instead of creating a key."),
  })
  .strict();

export const fileDestinationSchema = z
  .object({
    type: z.literal("file").describe("`file`: a directory (docs/storage-file.md)."),
    name: destinationNameSchema.optional(),
    path: z
      .string({ required_error: "is required; name the directory that holds the snapshots, e.g. /mnt/backup/vault" })
      .regex(/^\//, "must be an absolute directory path, e.g. /mnt/backup/vault")
      .describe("Absolute path of the directory that holds the snapshots (an NFS mount, a backup appliance's share). It must exist."),
    prefix,
    timeoutSeconds,
  })
  .strict();

export const gcsDestinationSchema = z
  .object({
    type: z.literal("gcs").describe("`gcs`: Google Cloud Storage (docs/storage-gcs.md)."),
    name: destinationNameSchema.optional(),
    bucket: z
      .string({ required_error: "is required; name the Cloud Storage bucket that holds the snapshots" })
      .regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, "must be a valid Cloud Storage bucket name: 3-63 lowercase letters, digits, '.', '_' and '-'")
      .describe("The Cloud Storage bucket that holds the snapshots and their manifests."),
    prefix,
    timeoutSeconds,
    endpoint: z
      .string()
      .url("must be a URL like https://storage.googleapis.com")
      .optional()
      .describe("Cloud Storage API endpoint (default: STORAGE_EMULATOR_HOST when set, else Google's)."),
    projectId: z.string().min(1).optional().describe("Google Cloud project (default: Application Default Credentials' project)."),
    kmsKeyName: z
      .string()
      .regex(/^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/, "must be a Cloud KMS key name: projects/P/locations/L/keyRings/R/cryptoKeys/K")
      .optional()
      .describe("Customer-managed encryption key (CMEK) for every object; default: the bucket's default key."),
  })
  .strict();

export const azureDestinationSchema = z
  .object({
    type: z.literal("azure").describe("`azure`: Azure Blob Storage (docs/storage-azure.md)."),
    name: destinationNameSchema.optional(),
    accountName: z
      .string({ required_error: "is required; name the storage account, e.g. 'vaultbackups'" })
      .regex(/^[a-z0-9]{3,24}$/, "must be a storage account name: 3-24 lowercase letters and digits")
      .describe("The Azure storage account."),
    container: z
      .string({ required_error: "is required; name the blob container that holds the snapshots" })
      .regex(/^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, "must be a valid container name: 3-63 lowercase letters, digits and single '-'")
      .describe("The blob container that holds the snapshots and their manifests."),
    prefix,
    timeoutSeconds,
    endpoint: z
      .string()
      .url("must be a URL like https://ACCOUNT.blob.core.windows.net")
      .optional()
      .describe("Blob service endpoint (default: https://<accountName>.blob.core.windows.net, or the one in AZURE_STORAGE_CONNECTION_STRING)."),
    encryptionScope: z.string().min(1).optional().describe("Encryption scope for every blob (customer-managed keys); default: the account's."),
  })
  .strict();

export const destinationSchema = z
  .discriminatedUnion("type", [s3DestinationSchema, fileDestinationSchema, gcsDestinationSchema, azureDestinationSchema], {
    errorMap: (issue, ctx) => (issue.code === "invalid_union_discriminator" ? { message: "must be one of s3 (the default), file, gcs, azure" } : { message: ctx.defaultError }),
  })
  .describe("Where the snapshots go (`type`: s3 by default, file, gcs, azure). Credentials never go here: each store takes its SDK's own.");

export type S3Destination = z.output<typeof s3DestinationSchema>;
export type FileDestination = z.output<typeof fileDestinationSchema>;
export type GcsDestination = z.output<typeof gcsDestinationSchema>;
export type AzureDestination = z.output<typeof azureDestinationSchema>;
export type Destination = z.output<typeof destinationSchema>;
export type DestinationInput = z.input<typeof destinationSchema>;
export type StoreType = NonNullable<Destination["type"]>;

/** The store type of a destination (`s3` when it names none). */
export function storeTypeOf(d: Destination): StoreType {
  return d.type ?? "s3";
}

/** The destination's name: its own, else `primary`. */
export function destinationNameOf(d: Destination, fallback = "primary"): string {
  return d.name ?? fallback;
}

/**
 * The destination as S3's, for what exists only on S3 (the SnapshotBucket component, IAM plans):
 * any other type is a ConfigError naming `purpose`.
 */
export function s3DestinationOf(d: Destination, purpose: string, field = "destination.type"): S3Destination {
  const type = storeTypeOf(d);
  if (type !== "s3") throw new ConfigError(`${field} is '${type}': ${purpose} needs an S3 destination (docs/storage.md)`, { field });
  return d as S3Destination;
}

/** The destination as Cloud Storage's (the GcsSnapshotBucket component): any other type is a ConfigError naming `field`. */
export function gcsDestinationOf(d: Destination, purpose: string, field = "destination.type"): GcsDestination {
  const type = storeTypeOf(d);
  if (type !== "gcs") throw new ConfigError(`${field} is '${type}': ${purpose} needs a gcs destination (docs/storage-gcs.md)`, { field });
  return d as GcsDestination;
}

/** The destination as Azure Blob's (the AzureSnapshotContainer component): any other type is a ConfigError naming `field`. */
export function azureDestinationOf(d: Destination, purpose: string, field = "destination.type"): AzureDestination {
  const type = storeTypeOf(d);
  if (type !== "azure") throw new ConfigError(`${field} is '${type}': ${purpose} needs an azure destination (docs/storage-azure.md)`, { field });
  return d as AzureDestination;
}

/** What identifies the place a destination writes to (a bucket, an account's container, a directory): a change of it means another store. */
export function destinationContainerOf(d: Destination): string {
  switch (d.type) {
    case "file":
      return d.path;
    case "azure":
      return `${d.accountName}/${d.container}`;
    default:
      return d.bucket;
  }
}
