import { ConfigError, OperationError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { VaultHttpError, type VaultClient } from "../vault/client.js";
import { nodeHealth } from "../vault/operations.js";
import { productProfile, PRODUCTS, type Product } from "../vault/product.js";

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
 * The refusal of the unauthenticated generate-root endpoints, with the product of the node that
 * refused (from its sys/health; undefined when it did not tell), so messages name that product's setting.
 */
export class GenerateRootRefused extends ConfigError {
  readonly product?: Product;
  constructor(message: string, product: Product | undefined) {
    super(message, { field: "token", stage: "generate root token" });
    this.product = product;
  }
}

/**
 * What turned generate-root off and what serves it again, in the words of `product` (both
 * products' when unknown): OpenBao >= 2.5.3 refuses it by default; Vault 1.x serves it by default.
 */
export function generateRootAdvice(product: Product | undefined): { why: string; setting: string } {
  const one = (p: Product) => {
    const profile = productProfile(p);
    const why = profile.generateRootByDefault
      ? `${profile.displayName} serves it by default, so these listeners were configured not to`
      : `${profile.displayName} turns it off by default`;
    return { why, setting: `${profile.displayName}: ${profile.generateRootSetting}` };
  };
  if (product) return one(product);
  const all = PRODUCTS.map(one);
  return { why: all.map((a) => a.why).join("; "), setting: all.map((a) => a.setting).join("; ") };
}

/**
 * The current generate-root attempt. OpenBao >= 2.5.3 disables these unauthenticated endpoints by
 * default (405): that is a configuration the operator must change, said plainly, with the setting
 * of the product the node is (its sys/health tells).
 */
export async function generateRootStatus(client: VaultClient, label = client.addr): Promise<GenerateRootStatus> {
  try {
    return (await client.get<GenerateRootStatus>("sys/generate-root/attempt", { anonymous: true })).body;
  } catch (err) {
    if (err instanceof VaultHttpError && (err.status === 405 || err.status === 404)) {
      const product = (await nodeHealth(client).catch(() => undefined))?.product;
      const advice = generateRootAdvice(product);
      throw new GenerateRootRefused(
        `${label} does not serve sys/generate-root (disabled; ${advice.why}), so no root token can be made from the unseal keys. ` +
          `Either serve it on the target nodes for the restore (listener stanza; ${advice.setting}), ` +
          `or give a token of the ORIGINAL cluster in VAULT_TOKEN (its tokens come back with the snapshot).`,
        product,
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
