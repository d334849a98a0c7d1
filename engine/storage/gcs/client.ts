import { existsSync, readFileSync } from "node:fs";
import { IdempotencyStrategy, Storage } from "@google-cloud/storage";
import { ConfigError } from "../../errors.js";
import { registerSecret } from "../../redact.js";

/** Where the Cloud Storage API is and how the store talks to it. */
export interface GcsEndpoint {
  /** The API root (`https://storage.googleapis.com`, or an emulator's `http://127.0.0.1:4443`). */
  root: string;
  /** True for an emulator (STORAGE_EMULATOR_HOST or a plain-http endpoint): requests carry no credentials. */
  emulator: boolean;
}

const GOOGLE_API = "https://storage.googleapis.com";

/**
 * The endpoint of a destination: its own `endpoint`, else STORAGE_EMULATOR_HOST (host:port, a URL,
 * or a URL ending in /storage/v1 as other SDKs take it), else Google's.
 */
export function gcsEndpoint(endpoint: string | undefined, env: NodeJS.ProcessEnv = process.env, field = "destination.endpoint"): GcsEndpoint {
  const fromEnv = env.STORAGE_EMULATOR_HOST?.trim();
  const raw = endpoint ?? (fromEnv ? (/^[a-z]+:\/\//i.test(fromEnv) ? fromEnv : `http://${fromEnv}`) : undefined);
  if (!raw) return { root: GOOGLE_API, emulator: false };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    const where = endpoint ? field : "STORAGE_EMULATOR_HOST";
    throw new ConfigError(`${where} '${raw}' is not a URL; use e.g. http://127.0.0.1:4443 for an emulator or https://storage.googleapis.com`, { field: where });
  }
  const path = url.pathname.replace(/\/+$/, "").replace(/\/storage\/v1$/, "");
  const root = `${url.protocol}//${url.host}${path}`;
  return { root, emulator: endpoint === undefined || url.protocol === "http:" };
}

/**
 * A Storage client on `endpoint`. Credentials come from Application Default Credentials (the SDK
 * reads GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, workload identity, the metadata server);
 * an emulator gets none.
 */
export function createGcsClient(endpoint: GcsEndpoint, opts: { projectId?: string } = {}): Storage {
  const storage = new Storage({
    // An emulator has no project; naming one keeps the SDK from asking the metadata server.
    projectId: opts.projectId ?? (endpoint.emulator ? "vrb-emulator" : undefined),
    apiEndpoint: endpoint.root,
    useAuthWithCustomEndpoint: !endpoint.emulator,
    retryOptions: {
      autoRetry: true,
      // Five attempts in all, as every S3 part gets: a chunk of a resumable upload is re-sent from
      // the offset the session reports, and a conditional write that lost is a 412, never retried.
      maxRetries: 4,
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
  });
  // With STORAGE_EMULATOR_HOST set the SDK sends JSON API calls to that value verbatim (no
  // /storage/v1) while uploads go to <root>/upload/storage/v1: pin both to the one root.
  storage.baseUrl = `${endpoint.root}/storage/v1`;
  return storage;
}

/**
 * Whether Application Default Credentials hold a service-account key, which V4 signed URLs need
 * (signing is local with the key). Other credentials (user login, workload identity, the metadata
 * server) could only sign through the IAM signBlob API, which this store does not call.
 */
export function serviceAccountKey(env: NodeJS.ProcessEnv = process.env): { clientEmail: string; file: string } | undefined {
  const file = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!file || !existsSync(file)) return undefined;
  try {
    const key = JSON.parse(readFileSync(file, "utf8")) as { type?: string; client_email?: string; private_key?: string };
    if (key.type !== "service_account" || !key.client_email || !key.private_key) return undefined;
    registerSecret(key.private_key);
    return { clientEmail: key.client_email, file };
  } catch {
    return undefined;
  }
}

/** What a failed Cloud Storage call tells: the API's reason (or the network error's code) and HTTP status. */
export function gcsErrorInfo(err: unknown): { code?: string; status?: number } {
  const e = err as { code?: unknown; errors?: { reason?: string }[]; response?: { status?: number } } | undefined;
  const status = typeof e?.code === "number" ? e.code : typeof e?.response?.status === "number" ? e.response.status : undefined;
  const reason = e?.errors?.find((x) => x.reason)?.reason;
  const code = reason ?? (typeof e?.code === "string" ? e.code : undefined);
  return { code, status };
}

/** "conditionNotMet (HTTP 412): Precondition failed": the API's reason for a message. */
export function describeGcsError(err: unknown): string {
  const { code, status } = gcsErrorInfo(err);
  const text = (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
  if (!code && status === undefined) return text;
  return `${code ?? "error"}${status !== undefined ? ` (HTTP ${status})` : ""}${text && text !== code ? `: ${text}` : ""}`;
}

export function isGcsNotFound(err: unknown): boolean {
  return gcsErrorInfo(err).status === 404;
}

export function isGcsPreconditionFailed(err: unknown): boolean {
  return gcsErrorInfo(err).status === 412;
}

/** Retention or a hold refused a delete or an overwrite. */
export function isGcsLocked(err: unknown): boolean {
  const { code, status } = gcsErrorInfo(err);
  return status === 403 && code !== undefined && /retention|hold/i.test(code);
}
