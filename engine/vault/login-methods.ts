import { ConfigError, OperationError } from "../errors.js";
import type { AuthMethod, AuthSettings } from "../policy.js";
import { registerSecret } from "../redact.js";
import { VaultHttpError, type VaultClient } from "./client.js";
import { readSecretFile } from "./credential-files.js";
import type { LoginCredentials } from "./login-settings.js";

export const KUBERNETES_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The `auth` part of Vault's answer to a login. */
export interface LoginAuth {
  client_token: string;
  accessor?: string;
  lease_duration?: number;
  renewable?: boolean;
}

/** One login as sent to `auth/<mount>/login`. */
export interface LoginRequest {
  method: Exclude<AuthMethod, "token">;
  mount: string;
  role?: string;
  body: Record<string, string>;
}

const WRAPPING_TOKEN = /^(hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}$/;

/** What to send to `auth/<mount>/login`; reads the credential files and environment. */
export async function loginRequest(
  auth: AuthSettings,
  env: NodeJS.ProcessEnv,
  unwrap: (wrappingToken: string) => Promise<string>,
  creds: LoginCredentials = {},
): Promise<LoginRequest> {
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

/** A failed login as the error to throw: a refusal (4xx) is a ConfigError naming method, mount and role. */
export function loginError(err: unknown, req: Pick<LoginRequest, "method" | "mount" | "role">, addr: string): Error {
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

/** Unwraps a response-wrapped AppRole secret ID (single use: a second unwrap is refused). */
export async function unwrapSecretId(node: VaultClient, wrappingToken: string, mount: string): Promise<string> {
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
