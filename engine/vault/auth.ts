import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ConfigError, OperationError } from "../errors.js";
import type { AuthMethod, AuthSettings, BackupPolicy } from "../policy.js";
import { silentProgress, type Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { VaultClient, VaultHttpError, tokenFromEnv, type VaultTlsOptions } from "./client.js";

/**
 * The one way the kit gets a Vault token (docs/auth.md): a token handed in (VAULT_TOKEN / BAO_TOKEN,
 * a token file, ~/.vault-token), or a login (AppRole, JWT/OIDC, Kubernetes, cert). A token from a
 * login is renewed while the command runs and revoked when it ends; a handed-in token is neither.
 */

export const KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The cluster fields a login needs (a validated policy's `cluster`). */
export type LoginCluster = Pick<BackupPolicy["cluster"], "nodes" | "caCert" | "tlsServerName" | "clientCert" | "clientKey"> & { auth?: Partial<AuthSettings> };

export interface LoginOptions {
  cluster: LoginCluster;
  /** A token handed in directly (e.g. the Pulumi `token` input): used as is, never renewed or revoked. */
  token?: string;
  env?: NodeJS.ProcessEnv;
  progress?: Progress;
  /** Where ~/.vault-token is looked for (default: the user's home). */
  homeDir?: string;
  /** Renew a login token in the background (default true). */
  renew?: boolean;
  /**
   * Login material handed in as values (the Pulumi resources' secret `login` input): used before
   * the files and environment variables of `cluster.auth`. Registered as secrets at once.
   */
  credentials?: LoginCredentials;
}

/** Login material as values instead of files or environment variables. */
export interface LoginCredentials {
  /** AppRole role ID. */
  roleId?: string;
  /** AppRole secret ID (a response-wrapped one is unwrapped). */
  secretId?: string;
  /** JWT for the jwt or kubernetes method (a CI OIDC token, a service-account token). */
  jwt?: string;
}

/**
 * The auth settings for login material given as values: AppRole material implies method approle
 * when the policy names no method (the default `token`); a JWT needs the policy's method and role.
 */
export function authWithCredentials(auth: AuthSettings, creds: LoginCredentials | undefined): AuthSettings {
  if (!creds) return auth;
  for (const v of [creds.roleId, creds.secretId, creds.jwt]) if (v) registerSecret(v);
  if ((creds.roleId || creds.secretId) && creds.jwt) {
    throw new ConfigError("login: give either AppRole material (roleId, secretId) or a jwt, not both", { field: "login" });
  }
  if (creds.roleId || creds.secretId) {
    if (auth.method === "token") return { ...auth, method: "approle" } as AuthSettings;
    if (auth.method !== "approle") {
      throw new ConfigError(`login: roleId/secretId are AppRole material but cluster.auth.method is '${auth.method}'; set it to approle (or leave it out)`, {
        field: "policy.cluster.auth.method",
      });
    }
  }
  if (creds.jwt && auth.method !== "jwt" && auth.method !== "kubernetes") {
    throw new ConfigError("login: a jwt needs cluster.auth.method jwt or kubernetes and cluster.auth.role (the role to log in as)", { field: "policy.cluster.auth.method" });
  }
  return auth;
}

export interface VaultSession {
  readonly token: string;
  readonly method: AuthMethod;
  /** Auth mount of a login; absent for a handed-in token. */
  readonly mount?: string;
  /** true: the kit logged in; the token is renewed and revoked by `close`. */
  readonly obtained: boolean;
  /** Where the token came from, for messages: "VAULT_TOKEN", "approle login at auth/approle", ... */
  readonly source: string;
  readonly accessor?: string;
  /** TTL the login granted, in seconds (0: no expiry or unknown). */
  readonly ttlSeconds: number;
  /** Successful renewals so far. */
  readonly renewals: number;
  /** Stops renewing; revokes a token the kit obtained. Safe to call twice; never throws. */
  close(): Promise<void>;
}

/** The TLS settings of the cluster with the environment's defaults, as the vault CLI reads them. */
export function clusterTls(cluster: LoginCluster, env: NodeJS.ProcessEnv = process.env): VaultTlsOptions {
  return {
    caCert: cluster.caCert,
    tlsServerName: cluster.tlsServerName,
    clientCert: cluster.clientCert ?? env.VAULT_CLIENT_CERT ?? env.BAO_CLIENT_CERT,
    clientKey: cluster.clientKey ?? env.VAULT_CLIENT_KEY ?? env.BAO_CLIENT_KEY,
  };
}

/** The auth settings with their defaults (a partial or absent section means method token). */
export function authSettings(auth: Partial<AuthSettings> | undefined): AuthSettings {
  return { method: "token", ...(auth ?? {}) } as AuthSettings;
}

function readSecretFile(path: string, field: string, what: string): string {
  if (!existsSync(path)) throw new ConfigError(`${field}: file ${path} does not exist; it should hold the ${what}`, { field });
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new ConfigError(`${field}: cannot read ${path} (${err instanceof Error ? err.message : String(err)}); it should hold the ${what}`, { field });
  }
  if (!text) throw new ConfigError(`${field}: file ${path} is empty; it should hold the ${what}`, { field });
  registerSecret(text);
  return text;
}

/**
 * A handed-in token, in the order the vault CLI uses: the explicit one, VAULT_TOKEN / BAO_TOKEN,
 * `tokenFile`, then ~/.vault-token. Undefined when there is none.
 */
export function givenToken(opts: Pick<LoginOptions, "token" | "env" | "homeDir"> & { tokenFile?: string }): { token: string; source: string } | undefined {
  const env = opts.env ?? process.env;
  const found = (token: string, source: string) => (registerSecret(token), { token, source });
  if (opts.token) return found(opts.token, "the given token");
  const fromEnv = tokenFromEnv(env);
  if (fromEnv) return found(fromEnv, env.VAULT_TOKEN ? "VAULT_TOKEN" : "BAO_TOKEN");
  if (opts.tokenFile) return found(readSecretFile(opts.tokenFile, "cluster.auth.tokenFile", "Vault token"), opts.tokenFile);
  const home = join(opts.homeDir ?? env.HOME ?? homedir(), ".vault-token");
  if (existsSync(home)) {
    const text = readFileSync(home, "utf8").trim();
    if (text) return found(text, home);
  }
  return undefined;
}

interface LoginAuth {
  client_token: string;
  accessor?: string;
  lease_duration?: number;
  renewable?: boolean;
}

interface LoginRequest {
  method: Exclude<AuthMethod, "token">;
  mount: string;
  role?: string;
  body: Record<string, string>;
}

const WRAPPING_TOKEN = /^(hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}$/;

/** What to send to `auth/<mount>/login`; reads the credential files and environment. */
async function loginRequest(auth: AuthSettings, env: NodeJS.ProcessEnv, unwrap: (wrappingToken: string) => Promise<string>, creds: LoginCredentials = {}): Promise<LoginRequest> {
  const method = auth.method as LoginRequest["method"];
  const mount = auth.mount ?? method;
  switch (method) {
    case "approle": {
      const roleId = creds.roleId || (auth.roleIdFile ? readSecretFile(auth.roleIdFile, "cluster.auth.roleIdFile", "AppRole role ID") : env.VAULT_ROLE_ID);
      if (!roleId) throw new ConfigError("approle login needs a role ID: set cluster.auth.roleIdFile (or --role-id-file) or VAULT_ROLE_ID", { field: "cluster.auth.roleIdFile" });
      let secretId = creds.secretId || (auth.secretIdFile ? readSecretFile(auth.secretIdFile, "cluster.auth.secretIdFile", "AppRole secret ID") : env.VAULT_SECRET_ID);
      if (!secretId) {
        throw new ConfigError("approle login needs a secret ID: set cluster.auth.secretIdFile (or --secret-id-file) or VAULT_SECRET_ID", { field: "cluster.auth.secretIdFile" });
      }
      registerSecret(roleId);
      registerSecret(secretId);
      // A response-wrapped secret ID (`vault write -wrap-ttl=... auth/approle/role/R/secret-id`) is a token.
      if (WRAPPING_TOKEN.test(secretId)) secretId = await unwrap(secretId);
      return { method, mount, body: { role_id: roleId, secret_id: secretId } };
    }
    case "jwt":
    case "kubernetes": {
      const file = auth.jwtFile ?? (method === "kubernetes" ? KUBERNETES_TOKEN_FILE : undefined);
      const jwt = creds.jwt || (file ? readSecretFile(file, "cluster.auth.jwtFile", method === "jwt" ? "JWT" : "Kubernetes service account token") : env.VRB_JWT);
      if (!jwt) throw new ConfigError("jwt login needs a token: set cluster.auth.jwtFile (or --jwt-file) or VRB_JWT", { field: "cluster.auth.jwtFile" });
      registerSecret(jwt);
      if (!auth.role) throw new ConfigError(`${method} login needs a role: set cluster.auth.role (or --auth-role)`, { field: "cluster.auth.role" });
      return { method, mount, role: auth.role, body: { role: auth.role, jwt } };
    }
    case "cert":
      return { method, mount, role: auth.role, body: auth.role ? { name: auth.role } : {} };
    default:
      throw new ConfigError(`cluster.auth.method: unknown method '${String(method)}'`, { field: "cluster.auth.method" });
  }
}

/** Why Vault refused a login, in words that point at the fix. */
export function explainLoginRefusal(method: AuthMethod, errors: string[], status: number): string {
  const text = errors.join("; ");
  const hints: [RegExp, string][] = [
    [
      /wrapping token/i,
      "the secret ID file holds a response-wrapping token that is invalid, expired or already unwrapped (it can be unwrapped once): issue a new wrapped secret ID",
    ],
    [
      /(invalid|failed to validate).*(secret|role).?id|invalid role or secret id|invalid secret id/i,
      "wrong role ID or secret ID, or the secret ID expired (secret_id_ttl) or was used up (secret_id_num_uses)",
    ],
    [
      /role.*(not found|does not exist|could not be found)|invalid role name|role .* not found/i,
      "the role does not exist on this mount: check cluster.auth.role and cluster.auth.mount",
    ],
    [
      /claim .* does not match|bound claim|does not match any associated bound/i,
      "a bound claim does not match: the token's claims (e.g. repository, ref, sub, namespace) differ from the role's bound_claims",
    ],
    [/aud(ience)?/i, "the token's aud claim is not one of the role's bound_audiences"],
    [/expired|exp.*not satisfied|token is expired/i, "the JWT is expired: get a fresh one (CI and service account tokens are short-lived)"],
    [/not yet valid|nbf|iat/i, "the JWT is not valid yet (nbf/iat in the future): check the clocks"],
    [/signature|verify|key/i, "the JWT's signature does not verify against the mount's keys (jwt_validation_pubkeys / JWKS / OIDC discovery)"],
    [/certificate|no chain|invalid cert/i, "the client certificate is not accepted by any cert role of this mount (certificate, CA or allowed names)"],
    [/no handler|unsupported path|permission denied/i, "no such auth method is enabled at this mount (or it denies logins): check cluster.auth.mount"],
  ];
  const hint = hints.find(([re]) => re.test(text))?.[1];
  return hint ?? (status === 403 ? "permission denied: check the mount, role and credentials" : `check the ${method} credentials and role`);
}

function loginError(err: unknown, req: Pick<LoginRequest, "method" | "mount" | "role">, addr: string): Error {
  const who = `${req.method} login at auth/${req.mount}${req.role ? ` (role ${req.role})` : ""}`;
  if (err instanceof VaultHttpError && err.status >= 400 && err.status < 500) {
    return new ConfigError(
      `${who} on ${addr} was refused (${err.status}${err.errors.length ? `: ${err.errors.join("; ")}` : ""}): ${explainLoginRefusal(req.method, err.errors, err.status)}`,
      {
        field: "cluster.auth",
        cause: err,
      },
    );
  }
  return new OperationError(`${who} on ${addr} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err, stage: "login" });
}

/**
 * Gets a token for the cluster: a handed-in one for method `token`, or a login on the first node
 * that answers. Bad or refused credentials are ConfigErrors (exit 2) naming method, mount and role.
 */
export async function vaultLogin(opts: LoginOptions): Promise<VaultSession> {
  const env = opts.env ?? process.env;
  const auth = authWithCredentials(authSettings(opts.cluster.auth), opts.credentials);
  const progress = opts.progress ?? silentProgress;
  if (opts.token || auth.method === "token") {
    const given = givenToken({ token: opts.token, env, homeDir: opts.homeDir, tokenFile: auth.tokenFile });
    if (!given) {
      throw new ConfigError(
        "no Vault token: set VAULT_TOKEN (or BAO_TOKEN), set cluster.auth.tokenFile (e.g. a Vault Agent sink), log in with `vault login` (~/.vault-token), or choose a login method with cluster.auth.method / --auth-method (docs/auth.md)",
        { field: "VAULT_TOKEN" },
      );
    }
    return handedIn(given.token, given.source);
  }
  const tls = clusterTls(opts.cluster, env);
  if (auth.method === "cert" && !(tls.clientCert && tls.clientKey)) {
    throw new ConfigError("cert login needs a client certificate: set cluster.clientCert and cluster.clientKey (or VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)", {
      field: "cluster.clientCert",
    });
  }
  if (!opts.cluster.nodes.length) throw new ConfigError("the policy lists no Vault node addresses to log in at; set cluster.nodes", { field: "cluster.nodes" });
  const client = new VaultClient({ addr: opts.cluster.nodes[0]!, ...tls, retries: 1 });
  const mount = auth.mount ?? auth.method;
  let req: LoginRequest | undefined;
  let lastError: unknown;
  try {
    // The first node that answers serves the unwrap and the login (a standby redirects to the
    // active node); an unreachable node is skipped, a refusal is final (it is the same on every node).
    for (const addr of opts.cluster.nodes) {
      const node = client.forNode(addr);
      try {
        req ??= await loginRequest(auth, env, (wrappingToken) => unwrapSecretId(node, wrappingToken, mount), opts.credentials);
        const res = await node.post<{ auth?: LoginAuth }>(`auth/${req.mount}/login`, req.body, { anonymous: true });
        const a = res.body?.auth;
        if (!a?.client_token) throw new OperationError(`${req.method} login at auth/${req.mount} on ${addr} answered without a token`);
        registerSecret(a.client_token);
        progress.info(`logged in with ${req.method} at auth/${req.mount}${req.role ? ` as ${req.role}` : ""} (token accessor ${a.accessor ?? "?"}, ttl ${a.lease_duration ?? 0}s)`);
        // The session's own client (and connection pool): it outlives this function's.
        return new LoginSession(new VaultClient({ addr, ...tls, retries: 2 }), req, a, progress, opts.renew ?? true);
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        lastError = loginError(err, req ?? { method: auth.method as LoginRequest["method"], mount, role: auth.role }, addr);
        if (lastError instanceof ConfigError || (err instanceof VaultHttpError && err.status < 500)) throw lastError;
      }
    }
    throw lastError;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Unwraps a response-wrapped AppRole secret ID (single use: a second unwrap is refused). */
async function unwrapSecretId(node: VaultClient, wrappingToken: string, mount: string): Promise<string> {
  const c = node.forNode(node.addr);
  c.setToken(wrappingToken);
  try {
    const res = await c.post<{ data?: { secret_id?: string } }>("sys/wrapping/unwrap", {});
    const secretId = res.body?.data?.secret_id;
    if (!secretId) throw new ConfigError("cluster.auth.secretIdFile: the response-wrapping token did not wrap a secret ID", { field: "cluster.auth.secretIdFile" });
    registerSecret(secretId);
    return secretId;
  } catch (err) {
    if (err instanceof VaultHttpError && err.status >= 400 && err.status < 500) {
      throw new ConfigError(
        `approle login at auth/${mount} on ${node.addr}: cannot unwrap the secret ID (${err.status}: ${err.errors.join("; ")}): ${explainLoginRefusal("approle", ["wrapping token"], err.status)}`,
        { field: "cluster.auth.secretIdFile", cause: err },
      );
    }
    throw err;
  }
}

function handedIn(token: string, source: string): VaultSession {
  return { token, method: "token", obtained: false, source, ttlSeconds: 0, renewals: 0, close: async () => undefined };
}

/** Renews before 2/3 of the TTL: at half of it, so one failed attempt still leaves time for another. */
const RENEW_AT = 0.5;

class LoginSession implements VaultSession {
  readonly token: string;
  readonly method: AuthMethod;
  readonly mount: string;
  readonly obtained = true;
  readonly source: string;
  readonly accessor?: string;
  readonly ttlSeconds: number;
  renewals = 0;
  private readonly client: VaultClient;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private expiresAt: number;
  private renewing?: Promise<void>;

  constructor(
    client: VaultClient,
    req: LoginRequest,
    auth: LoginAuth,
    private readonly progress: Progress,
    renew: boolean,
  ) {
    this.client = client;
    this.client.setToken(auth.client_token);
    this.token = auth.client_token;
    this.method = req.method;
    this.mount = req.mount;
    this.source = `${req.method} login at auth/${req.mount}`;
    this.accessor = auth.accessor;
    this.ttlSeconds = auth.lease_duration ?? 0;
    this.expiresAt = Date.now() + this.ttlSeconds * 1000;
    if (renew && auth.renewable && this.ttlSeconds > 0) this.schedule(this.ttlSeconds * RENEW_AT * 1000);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(
      () => {
        this.renewing = this.renewOnce().finally(() => (this.renewing = undefined));
      },
      Math.max(ms, 200),
    );
    this.timer.unref();
  }

  private async renewOnce(): Promise<void> {
    try {
      const res = await this.client.post<{ auth?: { lease_duration?: number; renewable?: boolean } }>("auth/token/renew-self", {}, { idempotent: true, timeoutMs: 10_000 });
      const ttl = res.body?.auth?.lease_duration ?? 0;
      this.renewals++;
      this.expiresAt = Date.now() + ttl * 1000;
      if (ttl <= 0 || res.body?.auth?.renewable === false) {
        this.progress.warn(`the ${this.source} token (accessor ${this.accessor ?? "?"}) can no longer be renewed; it expires in ${ttl}s`);
        return;
      }
      this.schedule(ttl * RENEW_AT * 1000);
    } catch (err) {
      const left = this.expiresAt - Date.now();
      this.progress.warn(`renewing the ${this.source} token (accessor ${this.accessor ?? "?"}) failed: ${err instanceof Error ? err.message : String(err)}`);
      if (left > 2_000) this.schedule(Math.min(5_000, left / 3));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.renewing?.catch(() => undefined);
    try {
      await this.client.post("auth/token/revoke-self", {}, { idempotent: true, timeoutMs: 10_000 });
      this.progress.info(`revoked the ${this.source} token (accessor ${this.accessor ?? "?"})`);
    } catch (err) {
      this.progress.warn(
        `could not revoke the ${this.source} token (accessor ${this.accessor ?? "?"}): ${err instanceof Error ? err.message : String(err)}; it expires by itself, or revoke it by accessor`,
      );
    } finally {
      await this.client.close().catch(() => undefined);
    }
  }
}

/** Logs in, runs `fn` with the session, and closes it (revoking a login token) however `fn` ends. */
export async function withVaultSession<T>(opts: LoginOptions, fn: (session: VaultSession) => Promise<T>): Promise<T> {
  const session = await vaultLogin(opts);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}
