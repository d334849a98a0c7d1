import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { tokenFromEnv } from "./client.js";
import type { LoginOptions } from "./login-settings.js";

/** A credential file's trimmed text, registered as a secret; a missing, unreadable or empty file is a ConfigError naming `field`. */
export function readSecretFile(path: string, field: string, what: string): string {
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
