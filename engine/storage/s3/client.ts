import type { PutObjectCommand, S3ClientConfig, UploadPartCommand } from "@aws-sdk/client-s3";
import { registerSecret } from "../../redact.js";
import { s3ErrorInfo } from "./errors.js";
import { S3Client } from "./sdk.js";

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
    // Every call is retried on 5xx, throttling and network errors with jittered backoff, longer for
    // throttling (503 SlowDown). Part uploads and downloads get further rounds of their own on top
    // (retryS3Call), again backing off longer when S3 throttles. Not the "adaptive" mode: its
    // client-wide rate limiter drops to one request every 2 s under sustained throttling, which
    // also slows the clean-up (abort) of the upload it is meant to protect.
    // No `Expect: 100-continue` (the SDK's default above 2 MiB): every 8 MiB part would wait a
    // round trip for the server's go-ahead before sending its body. At 20 ms from S3 that made the
    // backup 20 % slower (docs/benchmarks.md); a refused request wastes at most one part's bytes.
    expectContinueHeader: false,
    retryMode: "standard",
    maxAttempts: S3_CALL_ATTEMPTS,
    ...extra,
  });
}

/** Attempts of one S3 call by the SDK (the first and its retries). */
export const S3_CALL_ATTEMPTS = 3;

/**
 * Sends `command`'s body unsigned (x-amz-content-sha256: UNSIGNED-PAYLOAD), so the SDK does not
 * hash the whole body with SHA-256 for the signature. Only for bodies that carry a checksum S3
 * verifies (x-amz-checksum-*, itself a signed header): the part uploads (stages/upload.ts).
 */
export function unsignedPayload<C extends UploadPartCommand | PutObjectCommand>(command: C): C {
  // Both commands' stacks take the same build middleware; TypeScript cannot call a union of overloads.
  (command as UploadPartCommand).middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      return next(args);
    },
    { step: "build", name: "vrbUnsignedPayload", override: true },
  );
  return command;
}

export interface S3RetryOptions {
  /** Rounds of the call (each one is itself up to S3_CALL_ATTEMPTS SDK attempts); default 5. */
  attempts?: number;
  /** First backoff; doubled every round, up to 10 s, with full jitter; throttling starts at 4x. */
  baseDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each further round. */
  onRetry?: (err: unknown, round: number, delayMs: number) => void;
  /** Narrows which retryable errors get another round (default: all of them). */
  retryIf?: (info: ReturnType<typeof s3ErrorInfo>) => boolean;
  random?: () => number;
}

/**
 * Runs `call` until it succeeds, it fails with an error that another try cannot fix (4xx other
 * than throttling, an abort), or `attempts` rounds are used up; backs off between rounds, longer
 * when S3 throttles. `call` must be repeatable as is (a part upload re-sends the same buffer).
 */
export async function retryS3Call<T>(call: () => Promise<T>, opts: S3RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const random = opts.random ?? Math.random;
  for (let round = 1; ; round++) {
    try {
      return await call();
    } catch (err) {
      const info = s3ErrorInfo(err);
      if (opts.signal?.aborted || !info.retryable || opts.retryIf?.(info) === false || round >= attempts) throw err;
      const base = (opts.baseDelayMs ?? 250) * (info.throttling ? 4 : 1);
      const delay = Math.round(Math.min(10_000, base * 2 ** (round - 1)) * (0.5 + random() / 2));
      opts.onRetry?.(err, round, delay);
      await abortableSleep(delay, opts.signal);
    }
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
