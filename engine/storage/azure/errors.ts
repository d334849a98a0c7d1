import { ConfigError, findCause, OperationError, type VrbError } from "../../errors.js";
import { sleep } from "../../wait.js";
import { StoreConflictError, StoreLockedError } from "../errors.js";

/** What the SDK knows about a failed call: Azure's error code and the HTTP status, when Azure answered. */
export interface AzureErrorInfo {
  code?: string;
  status?: number;
  /** Worth another round: no answer at all, a 5xx, throttling, or a block that arrived damaged. */
  retryable: boolean;
}

/** A block whose bytes did not match the checksum sent with it: damaged on the way, send it again. */
const DAMAGED_IN_TRANSIT = new Set(["Md5Mismatch", "Crc64Mismatch", "InvalidMd5"]);

/** The Azure SDK's RestError, or an error that wraps one (ours wrap it as `cause`). */
function restErrorOf(err: unknown): { name?: string; code?: string; statusCode?: number; details?: { errorCode?: string }; message?: string } | undefined {
  const rest = findCause(err, (e) => (e as { name?: string }).name === "RestError" || (e as { statusCode?: number }).statusCode !== undefined);
  return (rest ?? err) as ReturnType<typeof restErrorOf>;
}

export function azureErrorInfo(err: unknown): AzureErrorInfo {
  const e = restErrorOf(err);
  const status = e?.statusCode;
  // A HEAD has no body: its code then comes only from the x-ms-error-code header (details.errorCode).
  const code = e?.details?.errorCode ?? e?.code;
  if (e?.name === "AbortError") return { code, status, retryable: false };
  const retryable = status === undefined || status >= 500 || status === 408 || status === 429 || (code !== undefined && DAMAGED_IN_TRANSIT.has(code));
  return { code, status, retryable };
}

/** "BlobNotFound (HTTP 404): The specified blob does not exist." — Azure's first line, without its request id and time. */
export function describeAzureError(err: unknown): string {
  const e = restErrorOf(err);
  const { code, status } = azureErrorInfo(err);
  const text = (e?.message ?? String(err)).split("\n")[0]!.trim();
  if (!code && status === undefined) return text;
  return `${code ?? "error"}${status !== undefined ? ` (HTTP ${status})` : ""}${text && text !== code ? `: ${text}` : ""}`;
}

export function isNotFound(err: unknown): boolean {
  const { code, status } = azureErrorInfo(err);
  return status === 404 || code === "BlobNotFound";
}

export function isContainerNotFound(err: unknown): boolean {
  return azureErrorInfo(err).code === "ContainerNotFound";
}

/** Refusals of a blob under an immutability policy or a legal hold (BlobImmutableDueToPolicy, ...LegalHold). */
export function isImmutable(err: unknown): boolean {
  const { code } = azureErrorInfo(err);
  return code !== undefined && /immutab|legalhold/i.test(code);
}

/** The identity chain's failures (@azure/identity): no identity here, or one Entra ID refused. */
const IDENTITY_FAILURES = new Set(["CredentialUnavailableError", "AggregateAuthenticationError", "AuthenticationError"]);

/** A request that could not be signed because no credential was found: bad setup, said as such (exit 2). */
export function credentialsProblem(err: unknown, url: string): ConfigError | undefined {
  const e = findCause(err, (c) => IDENTITY_FAILURES.has((c as { name?: string }).name ?? ""));
  if (!e) return undefined;
  return new ConfigError(
    `no Azure credential could sign the request to ${url} (${(e as Error).name}): set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_KEY (the account key), ` +
      "or run where a workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE) or a managed identity is available (docs/storage-azure.md)",
    { field: "AZURE_STORAGE_CONNECTION_STRING", cause: err },
  );
}

/**
 * The error a store method throws for an SDK failure: names the object's URL and Azure's code,
 * never a credential (the SDK's message carries neither key nor SAS signature; both are also
 * registered for redaction). Locks, lost conditional writes and missing credentials get their own classes.
 */
export function storeFailure(what: string, url: string, err: unknown, stage?: string): VrbError {
  if (err instanceof OperationError || err instanceof ConfigError) return err;
  const noCredential = credentialsProblem(err, url);
  if (noCredential) return noCredential;
  const message = `${what} ${url} failed: ${describeAzureError(err)}`;
  if (isImmutable(err)) return new StoreLockedError(`${message} (the blob is under an immutability policy or a legal hold)`, { cause: err, stage });
  return new OperationError(message, { cause: err, stage });
}

/** A conditional write that lost its race: the blob appeared (409 BlobAlreadyExists) or changed or went away (412, 404). */
export function conflictOf(err: unknown, url: string, condition: "ifAbsent" | "ifMatch"): StoreConflictError | undefined {
  const { code, status } = azureErrorInfo(err);
  const lost = code === "BlobAlreadyExists" || code === "ConditionNotMet" || status === 412 || (condition === "ifMatch" && status === 404);
  if (!lost) return undefined;
  const why = condition === "ifAbsent" ? "another writer created it first" : "it changed or was deleted since it was read";
  return new StoreConflictError(`the conditional write of ${url} lost its race: ${why} (${describeAzureError(err)})`, { cause: err });
}

export interface AzureRetryOptions {
  /** Rounds of the call (each one is itself up to the SDK's attempts); default 5. */
  attempts?: number;
  /** First backoff; doubled every round, up to 10 s, with jitter; throttling (429, 503) starts at 4x. */
  baseDelayMs?: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, round: number, delayMs: number) => void;
}

/**
 * Runs `call` until it succeeds, fails with an error another try cannot fix (a 4xx other than
 * throttling or a damaged block, an abort), or the rounds are used up. The SDK's own retry policy
 * covers 500/503 and resets within one round; these rounds add the throttling answers it does not
 * retry (429, 408) and a longer outage. `call` must be repeatable (a block re-sends its buffer).
 */
export async function retryAzureCall<T>(call: () => Promise<T>, opts: AzureRetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  for (let round = 1; ; round++) {
    try {
      return await call();
    } catch (err) {
      const info = azureErrorInfo(err);
      if (opts.signal?.aborted || !info.retryable || round >= attempts) throw err;
      const throttled = info.status === 429 || info.status === 503;
      const base = (opts.baseDelayMs ?? 250) * (throttled ? 4 : 1);
      const delay = Math.round(Math.min(10_000, base * 2 ** (round - 1)) * (0.5 + Math.random() / 2));
      opts.onRetry?.(err, round, delay);
      await sleep(delay, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}
