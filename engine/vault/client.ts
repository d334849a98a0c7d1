import { readFileSync, existsSync } from "node:fs";
import type { Agent, Dispatcher } from "undici";
import { ConfigError, OperationError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { undici } from "../lazy-modules.js";
import { sleep } from "../wait.js";

export interface VaultTlsOptions {
  /** PEM text or a path to a PEM file (VAULT_CACERT). */
  caCert?: string;
  /** SNI / certificate name to expect when the address is an IP or a load balancer. */
  tlsServerName?: string;
  /** Client certificate for mTLS listeners and the cert login method: PEM text or a file path (VAULT_CLIENT_CERT). */
  clientCert?: string;
  /** Private key of `clientCert`: PEM text or a file path (VAULT_CLIENT_KEY). */
  clientKey?: string;
}

export interface VaultClientOptions extends VaultTlsOptions {
  addr: string;
  token?: string;
  /** TCP+TLS connect deadline. */
  connectTimeoutMs?: number;
  /** Deadline for headers and body of ordinary (non-stream) calls. */
  requestTimeoutMs?: number;
  /** Retries with backoff for idempotent calls (GET, and calls marked idempotent). */
  retries?: number;
}

export interface VaultCallOptions {
  query?: Record<string, string | number | boolean>;
  body?: unknown;
  /** Statuses that are answers, not errors (e.g. sys/health's 429/501/503). */
  okStatuses?: number[];
  /** Retry transport errors and 5xx even for a non-GET (the call is safe to repeat). */
  idempotent?: boolean;
  /** Send without the token (sys/health, sys/unseal, sys/init need none). */
  anonymous?: boolean;
  timeoutMs?: number;
}

export interface VaultResponse<T> {
  status: number;
  body: T;
}

/** An error answer from Vault: status and Vault's own `errors` list. Never contains the token. */
export class VaultHttpError extends OperationError {
  readonly status: number;
  readonly errors: string[];
  readonly path: string;
  constructor(addr: string, method: string, path: string, status: number, errors: string[]) {
    const detail = errors.length ? `: ${errors.join("; ")}` : "";
    super(`${method} ${addr}${path} answered ${status}${detail}`);
    this.status = status;
    this.errors = errors;
    this.path = path;
  }
}

/** The ACL capability a request needs, as Vault policies name them. */
function capabilityOf(method: string, query?: Record<string, unknown>): string {
  if (method === "LIST" || (method === "GET" && String(query?.list) === "true")) return "list";
  if (method === "GET" || method === "HEAD") return "read";
  if (method === "DELETE") return "delete";
  if (method === "PATCH") return "patch";
  return "update";
}

const VERB: Record<string, string> = { read: "read", list: "list", delete: "delete", patch: "patch", update: "write to" };

/**
 * A 403 from Vault: the token's policy does not allow the request (or the token is no longer
 * valid). A configuration error (exit 2, never retried), said in one line naming the path and the
 * capability, never Vault's multi-line text. It is also a `VaultHttpError` (status 403, `errors`)
 * for the callers that treat a 403 as an answer (a mount table read, a token probe).
 */
export class VaultPermissionError extends ConfigError {
  readonly status = 403;
  readonly errors: string[];
  readonly path: string;
  readonly capability: string;
  constructor(addr: string, method: string, path: string, errors: string[], opts: { query?: Record<string, unknown>; stage?: string } = {}) {
    const bare = path.replace(/^\/v1\//, "").replace(/^\//, "");
    const capability = capabilityOf(method, opts.query);
    const invalid = errors.some((e) => /invalid token|token.*(expired|revoked)/i.test(e));
    super(
      invalid
        ? `permission denied: the token is not valid on ${addr} (expired, revoked or of another cluster), so it may not ${VERB[capability]} ${bare}; give a current token (see docs/auth.md); ${addr} answered 403`
        : `permission denied: the token may not ${VERB[capability]} ${bare} (needs '${capability}' on that path; see docs/auth.md); ${addr} answered 403`,
      { field: "token", stage: opts.stage },
    );
    this.errors = errors;
    this.path = path;
    this.capability = capability;
  }
}

// A 403 is a VaultHttpError too (status, errors, path), though its class is a ConfigError.
Object.defineProperty(VaultHttpError, Symbol.hasInstance, {
  value: (v: unknown) => Function.prototype[Symbol.hasInstance].call(VaultHttpError, v) || v instanceof VaultPermissionError,
});

/** The error for a refused Vault request: a VaultPermissionError for a 403, a VaultHttpError otherwise. */
export function vaultHttpError(
  addr: string,
  method: string,
  path: string,
  status: number,
  errors: string[],
  opts: { query?: Record<string, unknown>; stage?: string } = {},
): VaultHttpError | VaultPermissionError {
  return status === 403 ? new VaultPermissionError(addr, method, path, errors, opts) : new VaultHttpError(addr, method, path, status, errors);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 3;

export function loadCaCert(caCert: string | undefined): string | undefined {
  if (!caCert) return undefined;
  if (caCert.includes("-----BEGIN")) return caCert;
  if (!existsSync(caCert)) {
    throw new ConfigError(`caCert: file ${caCert} does not exist; give a PEM file path or the PEM text itself`, {
      field: "cluster.caCert",
    });
  }
  return readFileSync(caCert, "utf8");
}

/** A client certificate or key: PEM text, or a file path read now. */
export function loadPem(value: string | undefined, field: string): string | undefined {
  if (!value) return undefined;
  if (value.includes("-----BEGIN")) return value;
  if (!existsSync(value)) throw new ConfigError(`${field}: file ${value} does not exist; give a PEM file path`, { field });
  return readFileSync(value, "utf8");
}

export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.VAULT_TOKEN || env.BAO_TOKEN || undefined;
}

/**
 * The undici Agent of a client and its forNode siblings, made on the first request: undici is
 * ~110 modules, and a backup's first request goes to the store, not to Vault, so loading it in the
 * constructor held that request up (docs/architecture.md#start-up). The TLS files are read here,
 * in the constructor, so a bad CA or client certificate path is still refused before anything runs.
 */
class ConnectionPool {
  private readonly connect: Agent.Options["connect"];
  private made?: Agent;
  private closed = false;

  constructor(options: VaultClientOptions) {
    this.connect = {
      timeout: options.connectTimeoutMs ?? 10_000,
      ca: loadCaCert(options.caCert),
      servername: options.tlsServerName,
      ...clientIdentity(options),
    };
  }

  agent(): Agent {
    if (this.closed) throw new OperationError("the Vault client was closed");
    this.made ??= new (undici().Agent)({ connect: this.connect, keepAliveTimeout: 10_000 });
    return this.made;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.made?.close();
  }
}

/**
 * Vault / OpenBao HTTP API over undici. One instance talks to one node; `forNode` makes a sibling
 * for another node with the same TLS settings and token.
 */
export class VaultClient {
  readonly addr: string;
  private token?: string;
  private readonly options: VaultClientOptions;
  private readonly pool: ConnectionPool;
  private readonly ownsPool: boolean;

  /** `pool` is forNode's: a sibling shares its parent's connections. */
  constructor(options: VaultClientOptions, pool?: ConnectionPool) {
    let url: URL;
    try {
      url = new URL(options.addr);
    } catch {
      throw new ConfigError(`vault address '${options.addr}' is not a URL; use e.g. https://vault-0:8200`, {
        field: "cluster.nodes",
      });
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(`vault address '${options.addr}' must start with http:// or https://`, {
        field: "cluster.nodes",
      });
    }
    this.addr = url.origin;
    this.options = options;
    this.token = options.token;
    registerSecret(options.token);
    this.ownsPool = !pool;
    this.pool = pool ?? new ConnectionPool(options);
  }

  /** A client for another node of the same cluster (shares the connection pool and TLS settings). */
  forNode(addr: string): VaultClient {
    return new VaultClient({ ...this.options, addr, token: this.token }, this.pool);
  }

  setToken(token: string | undefined): void {
    registerSecret(token);
    this.token = token;
  }

  hasToken(): boolean {
    return Boolean(this.token);
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.close();
  }

  async get<T = Record<string, unknown>>(path: string, opts: VaultCallOptions = {}): Promise<VaultResponse<T>> {
    return this.call<T>("GET", path, opts);
  }

  async post<T = Record<string, unknown>>(path: string, body?: unknown, opts: VaultCallOptions = {}): Promise<VaultResponse<T>> {
    return this.call<T>("POST", path, { ...opts, body });
  }

  async put<T = Record<string, unknown>>(path: string, body?: unknown, opts: VaultCallOptions = {}): Promise<VaultResponse<T>> {
    return this.call<T>("PUT", path, { ...opts, body });
  }

  async delete<T = Record<string, unknown>>(path: string, opts: VaultCallOptions = {}): Promise<VaultResponse<T>> {
    return this.call<T>("DELETE", path, opts);
  }

  /** A JSON call with retries for idempotent requests. `path` is relative to /v1/. */
  async call<T>(method: Dispatcher.HttpMethod, path: string, opts: VaultCallOptions = {}): Promise<VaultResponse<T>> {
    const retryable = method === "GET" || opts.idempotent === true;
    const attempts = retryable ? (this.options.retries ?? 3) + 1 : 1;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.callOnce<T>(method, path, opts);
      } catch (err) {
        lastError = err;
        const transient = !(err instanceof VaultHttpError) || err.status >= 500;
        const sealedOrStandby = err instanceof VaultHttpError && (err.status === 503 || err.status === 429);
        if (!transient || sealedOrStandby || attempt === attempts) throw err;
        await sleep(Math.min(200 * 2 ** (attempt - 1), 3000));
      }
    }
    throw lastError;
  }

  private async callOnce<T>(method: Dispatcher.HttpMethod, path: string, opts: VaultCallOptions): Promise<VaultResponse<T>> {
    const timeout = opts.timeoutMs ?? this.options.requestTimeoutMs ?? 30_000;
    const res = await this.open(method, path, {
      query: opts.query,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      headers: { "content-type": "application/json" },
      anonymous: opts.anonymous,
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    const text = await res.body.text();
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    const ok = (res.statusCode >= 200 && res.statusCode < 300) || (opts.okStatuses ?? []).includes(res.statusCode);
    if (!ok) {
      const errors = Array.isArray((parsed as { errors?: unknown })?.errors)
        ? ((parsed as { errors: unknown[] }).errors.map(String) as string[])
        : text && !parsed
          ? [text.slice(0, 200)]
          : [];
      throw vaultHttpError(this.addr, method, `/v1/${stripSlash(path)}`, res.statusCode, errors, { query: opts.query });
    }
    return { status: res.statusCode, body: parsed as T };
  }

  /**
   * Opens a request and returns the raw response, following redirects from standbys to the
   * leader. Used directly for snapshot streams (no body timeout: a multi-GiB snapshot can take
   * as long as it takes; stalls are the caller's watchdog's job).
   */
  async open(
    method: Dispatcher.HttpMethod,
    path: string,
    opts: {
      query?: Record<string, string | number | boolean>;
      body?: Dispatcher.DispatchOptions["body"];
      headers?: Record<string, string>;
      anonymous?: boolean;
      headersTimeout?: number;
      bodyTimeout?: number;
      /** A streamed body cannot be replayed: a redirect is reported instead of followed. */
      replayableBody?: boolean;
      signal?: AbortSignal;
    } = {},
  ): Promise<Dispatcher.ResponseData> {
    let origin = this.addr;
    const search = opts.query ? "?" + new URLSearchParams(Object.entries(opts.query).map(([k, v]): [string, string] => [k, String(v)])).toString() : "";
    let pathWithQuery = `/v1/${stripSlash(path)}${search}`;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (this.token && !opts.anonymous) headers["x-vault-token"] = this.token;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.pool.agent().request({
          origin,
          path: pathWithQuery,
          method,
          headers,
          body: opts.body,
          headersTimeout: opts.headersTimeout ?? 30_000,
          bodyTimeout: opts.bodyTimeout ?? 30_000,
          signal: opts.signal,
        });
      } catch (err) {
        throw new OperationError(`cannot reach ${origin} (${method} ${pathWithQuery.split("?")[0]}): ${describeNetError(err)}`, {
          cause: err,
        });
      }
      if (!REDIRECTS.has(res.statusCode)) return res;
      const location = res.headers["location"];
      await res.body.dump();
      if (typeof location !== "string") {
        throw new OperationError(`${origin} answered ${res.statusCode} without a Location header`);
      }
      const next = new URL(location, origin);
      if (new URL(origin).protocol === "https:" && next.protocol !== "https:") {
        throw new OperationError(`refusing redirect from ${origin} to ${next.origin}: it would downgrade https to http (check the leader's api_addr)`);
      }
      if (opts.body !== undefined && opts.body !== null && typeof opts.body !== "string" && !opts.replayableBody) {
        throw new OperationError(`${origin} is not the active node (redirected to ${next.origin}); send the request to the active node`);
      }
      if (hop + 1 >= MAX_REDIRECTS) throw new OperationError(`too many redirects from ${this.addr} (last: ${next.origin})`);
      origin = next.origin;
      pathWithQuery = next.pathname + next.search;
    }
  }
}

function clientIdentity(options: VaultTlsOptions): { cert?: string; key?: string } {
  if (!options.clientCert && !options.clientKey) return {};
  if (!options.clientCert || !options.clientKey) {
    throw new ConfigError("a client certificate needs both cluster.clientCert and cluster.clientKey (or VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)", {
      field: options.clientCert ? "cluster.clientKey" : "cluster.clientCert",
    });
  }
  const key = loadPem(options.clientKey, "cluster.clientKey");
  registerSecret(key);
  return { cert: loadPem(options.clientCert, "cluster.clientCert"), key };
}

function stripSlash(p: string): string {
  return p.replace(/^\/+/, "").replace(/^v1\//, "");
}

export function describeNetError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = (err as { code?: string }).code ?? cause?.code;
  const message = cause?.message ?? err.message;
  return code && !message.includes(code) ? `${code} ${message}` : message;
}
