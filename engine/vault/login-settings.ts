import { ConfigError } from "../errors.js";
import type { AuthSettings, BackupPolicy } from "../policy.js";
import type { Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import type { VaultTlsOptions } from "./client.js";

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
