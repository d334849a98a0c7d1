import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { ConfigError } from "../errors.js";
import { registerSecret } from "../redact.js";

export interface S3Location {
  region?: string;
  /** Custom S3 endpoint (SeaweedFS, MinIO, moto...). Falls back to AWS_ENDPOINT_URL_S3. */
  endpoint?: string;
  forcePathStyle?: boolean;
}

/**
 * An S3 client for AWS or an S3-compatible endpoint. Credentials come from the SDK's default
 * chain (AWS_ACCESS_KEY_ID..., profiles, instance roles): we never take them as flags.
 */
export function createS3Client(loc: S3Location = {}, extra: Partial<S3ClientConfig> = {}): S3Client {
  const endpoint = loc.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  const region = loc.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  registerSecret(process.env.AWS_SECRET_ACCESS_KEY);
  registerSecret(process.env.AWS_SESSION_TOKEN);
  return new S3Client({
    region,
    endpoint,
    // Custom endpoints on localhost or IPs cannot use virtual-hosted style.
    forcePathStyle: loc.forcePathStyle ?? Boolean(endpoint),
    // Full-object integrity is ours (SHA-256 in the manifest); SDK default CRC32 trailers are
    // not understood by every S3-compatible server.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    ...extra,
  });
}

/** Turns the SDK's "no credentials" failure into a config error that says what to set. */
export function explainS3Error(err: unknown): unknown {
  // The failure may arrive wrapped by a pipeline stage ("upload failed: ..."): look through causes.
  let missingCredentials = false;
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { name?: string }).name === "CredentialsProviderError") missingCredentials = true;
  }
  if (missingCredentials) {
    return new ConfigError(
      "no AWS credentials for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role provides them " +
        '(for the local environment: eval "$(vrb local env)")',
      { field: "AWS_ACCESS_KEY_ID", cause: err },
    );
  }
  return err;
}
