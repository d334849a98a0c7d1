import { ConfigError, findCause } from "../../errors.js";

// What an S3 error means: its code and status, whether another try may fix it, and the words for it.

/** A part whose bytes did not match its checksum on arrival (corrupted on the way): send it again. */
const CORRUPTED_IN_TRANSIT = new Set(["BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"]);

/** Error codes S3 uses to ask for a slower request rate. */
const THROTTLING = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException", "RequestThrottled"]);

/** What the SDK knows about a failed S3 call: the error code and HTTP status, when S3 answered. */
export function s3ErrorInfo(err: unknown): { code?: string; status?: number; throttling: boolean; retryable: boolean } {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; code?: string } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  const code = e?.Code ?? (status !== undefined ? e?.name : undefined);
  const throttling = (code !== undefined && THROTTLING.has(code)) || status === 429 || status === 503;
  if (e?.name === "AbortError") return { code, status, throttling, retryable: false };
  // No answer from S3 at all (reset, refused, timeout): worth another try; an answer is when it is 5xx or throttling.
  const retryable = status === undefined || status >= 500 || throttling || status === 408 || Boolean(e?.$retryable) || (code !== undefined && CORRUPTED_IN_TRANSIT.has(code));
  return { code, status, throttling, retryable };
}

/** Whether `err` is S3 saying the object (or version) asked for does not exist. */
export function isMissingObject(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
}

/** "SlowDown (HTTP 503)": the S3 error code for a message. */
export function describeS3Error(err: unknown): string {
  const { code, status } = s3ErrorInfo(err);
  const text = err instanceof Error ? err.message : String(err);
  if (!code && status === undefined) return text;
  return `${code ?? "error"}${status !== undefined ? ` (HTTP ${status})` : ""}${text && text !== code ? `: ${text}` : ""}`;
}

/** Turns the SDK's "no credentials" failure into a config error that says what to set. */
export function explainS3Error(err: unknown): unknown {
  // The failure may arrive wrapped by a pipeline stage ("upload failed: ..."): look through causes.
  if (findCause(err, (e) => (e as { name?: string }).name === "CredentialsProviderError")) {
    return new ConfigError(
      "no AWS credentials for S3: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role provides them " +
        '(for the local environment: eval "$(vrb local env)")',
      { field: "AWS_ACCESS_KEY_ID", cause: err },
    );
  }
  return err;
}

/** S3's answers for a bucket that does not exist (HeadBucket has no body, so the SDK names it NotFound). */
const NO_SUCH_BUCKET = new Set(["NoSuchBucket", "NotFound"]);

/** Whether `err` is S3 saying the bucket itself does not exist (not a missing key). */
export function isNoSuchBucket(err: unknown, operation: "bucket" | "object" = "object"): boolean {
  const { code, status } = s3ErrorInfo(err);
  if (code === "NoSuchBucket") return true;
  // A HeadBucket 404 can only be about the bucket; on an object call a bare 404 is the key.
  return operation === "bucket" && status === 404 && (code === undefined || NO_SUCH_BUCKET.has(code));
}

/** A refusal by permissions, or (on a DELETE of a version) by an object lock or legal hold. */
export function isAccessDenied(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "AccessDenied" || e.$metadata?.httpStatusCode === 403;
}

/** A lost race of a conditional write: 412 (the ETag moved on) or 409 (another conditional write in flight). */
export function isLostRace(err: unknown): boolean {
  const { status, code } = s3ErrorInfo(err);
  return status === 412 || status === 409 || code === "PreconditionFailed" || code === "ConditionalRequestConflict";
}
