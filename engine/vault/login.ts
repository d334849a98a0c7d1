import { ConfigError, OperationError } from "../errors.js";
import { silentProgress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { VaultClient, VaultHttpError } from "./client.js";
import { givenToken } from "./credential-files.js";
import { loginError, loginRequest, unwrapSecretId, type LoginAuth, type LoginRequest } from "./login-methods.js";
import { authSettings, authWithCredentials, clusterTls, type LoginOptions } from "./login-settings.js";
import { handedInSession, LoginSession, type VaultSession } from "./vault-session.js";

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
    return handedInSession(given.token, given.source);
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

/** Logs in, runs `fn` with the session, and closes it (revoking a login token) however `fn` ends. */
export async function withVaultSession<T>(opts: LoginOptions, fn: (session: VaultSession) => Promise<T>): Promise<T> {
  const session = await vaultLogin(opts);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}
