import { createRequire } from "node:module";

// The AWS SDK is CommonJS in a package without "type", so it is required, not imported, like the
// libraries of engine/lazy-modules.ts: Node 20's ES module loader would first compile the S3
// client (~270 KB) to detect its format and then scan it for export names, ~25 ms of every S3
// command's start-up before its first request (docs/architecture.md#start-up). Both give the same
// module instance, so classes compare equal with anyone else's `import`.
const require = createRequire(import.meta.url);

const sdk = require("@aws-sdk/client-s3") as typeof import("@aws-sdk/client-s3");

export const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  S3Client,
  UploadPartCommand,
} = sdk;
/** The client as a type too, where a module takes both from here. */
export type S3Client = import("@aws-sdk/client-s3").S3Client;

/** The pre-signer, with its own signing packages: only a pre-signed URL (`vrb presign`, `vrb export`) needs it, so it loads on first use. */
export function s3Presigner(): typeof import("@aws-sdk/s3-request-presigner") {
  return require("@aws-sdk/s3-request-presigner") as typeof import("@aws-sdk/s3-request-presigner");
}
