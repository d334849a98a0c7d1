import { ConfigError, OperationError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { VaultHttpError, type VaultClient } from "../vault/client.js";

export interface GenerateRootStatus {
  started: boolean;
  nonce: string;
  progress: number;
  required: number;
  complete: boolean;
  otp?: string;
  otp_length?: number;
  encoded_token?: string;
  encoded_root_token?: string;
}

/**
 * A root token made from the unseal or recovery keys with `sys/generate-root` (OTP flow), so a
 * rebuild needs no standing root token. The caller revokes it when done (`revokeOwnToken`).
 */
export async function generateRootToken(client: VaultClient, keys: string[], label = client.addr): Promise<string> {
  keys.forEach(registerSecret);
  const status = await generateRootStatus(client, label);
  // Progress lives only in the node's memory: an attempt found here on a node we just unsealed is
  // a leftover of an earlier run of ours, never someone's work to keep.
  if (status.started) await client.delete("sys/generate-root/attempt", { anonymous: true });
  const attempt = (await client.put<GenerateRootStatus>("sys/generate-root/attempt", {}, { anonymous: true })).body;
  const otp = attempt.otp;
  if (!otp) throw new OperationError(`${label} started a generate-root attempt without an OTP; cannot decode the token`);
  registerSecret(otp);
  if (keys.length < attempt.required) {
    await client.delete("sys/generate-root/attempt", { anonymous: true }).catch(() => undefined);
    throw new OperationError(`generate-root on ${label} needs ${attempt.required} unseal keys but ${keys.length} were given`, {
      stage: "generate root token",
    });
  }
  let last: GenerateRootStatus | undefined;
  for (const [i, key] of keys.slice(0, attempt.required).entries()) {
    try {
      last = (await client.put<GenerateRootStatus>("sys/generate-root/update", { key, nonce: attempt.nonce }, { anonymous: true })).body;
    } catch (err) {
      await client.delete("sys/generate-root/attempt", { anonymous: true }).catch(() => undefined);
      const why = err instanceof VaultHttpError ? err.errors.join("; ") : err instanceof Error ? err.message : String(err);
      throw new OperationError(`generate-root on ${label}: unseal key #${i + 1} was refused (${why})`, { stage: "generate root token", cause: err });
    }
    if (last.complete) break;
  }
  const encoded = last?.encoded_token || last?.encoded_root_token;
  if (!last?.complete || !encoded) throw new OperationError(`generate-root on ${label} did not complete with ${attempt.required} keys`);
  const token = decodeRootToken(encoded, otp);
  registerSecret(token);
  return token;
}

/**
 * The current generate-root attempt. OpenBao >= 2.5.3 disables these unauthenticated endpoints by
 * default (405): that is a configuration the operator must change, said plainly.
 */
export async function generateRootStatus(client: VaultClient, label = client.addr): Promise<GenerateRootStatus> {
  try {
    return (await client.get<GenerateRootStatus>("sys/generate-root/attempt", { anonymous: true })).body;
  } catch (err) {
    if (err instanceof VaultHttpError && (err.status === 405 || err.status === 404)) {
      throw new ConfigError(
        `${label} does not serve sys/generate-root (disabled; OpenBao >= 2.5.3 turns it off by default), so no root token can be made from the unseal keys. ` +
          `Either set 'disable_unauthed_generate_root_endpoints = false' in the listener stanza of the target nodes for the restore, ` +
          `or give a token of the ORIGINAL cluster in VAULT_TOKEN (its tokens come back with the snapshot).`,
        { field: "token", stage: "generate root token" },
      );
    }
    throw err;
  }
}

/** `encoded_token` is base64 (unpadded) of token XOR otp (Vault ≥ 1.10 / OpenBao). */
export function decodeRootToken(encoded: string, otp: string): string {
  const bytes = Buffer.from(encoded, "base64");
  const pad = Buffer.from(otp, "utf8");
  if (bytes.length !== pad.length) throw new OperationError(`generate-root: encoded token is ${bytes.length} bytes, OTP ${pad.length}; cannot decode`);
  const out = Buffer.alloc(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ pad[i]!;
  return out.toString("utf8");
}

/** Revokes the client's own token (`auth/token/revoke-self`). */
export async function revokeOwnToken(client: VaultClient): Promise<void> {
  await client.post("auth/token/revoke-self", {}, { idempotent: true });
}
