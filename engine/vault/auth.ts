/**
 * The one way the kit gets a Vault token (docs/auth.md): a token handed in (VAULT_TOKEN / BAO_TOKEN,
 * a token file, ~/.vault-token), or a login (AppRole, JWT/OIDC, Kubernetes, cert). A token from a
 * login is renewed while the command runs and revoked when it ends; a handed-in token is neither.
 *
 * This file is the entry the rest of the kit imports; it names what the engine exports about
 * logging in, so the helpers behind it (credential files, login requests) stay internal:
 *   login-settings.ts    the options, the credentials given as values, the TLS and auth defaults
 *   credential-files.ts  token and credential files, the handed-in token's lookup order
 *   login-methods.ts     what each method sends to auth/<mount>/login, and why a login was refused
 *   vault-session.ts     the session: renewal in the background, revocation on close
 *   login.ts             vaultLogin and withVaultSession
 */
export { authSettings, authWithCredentials, clusterTls, type LoginCluster, type LoginCredentials, type LoginOptions } from "./login-settings.js";
export { givenToken } from "./credential-files.js";
export { explainLoginRefusal, KUBERNETES_TOKEN_FILE } from "./login-methods.js";
export type { VaultSession } from "./vault-session.js";
export { vaultLogin, withVaultSession } from "./login.js";
