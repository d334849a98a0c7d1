/**
 * Keeps secret values (tokens, unseal keys, S3 secret keys) out of every line we print or store.
 * Anything that writes human or machine output passes it through `redact` first.
 */
const secrets = new Set<string>();

/** Minimum length: short strings would redact ordinary words. Real tokens and keys are far longer. */
const MIN_SECRET_LENGTH = 8;

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join("[REDACTED]");
  }
  // Vault-style tokens we were not told about still never leave the process.
  return out.replace(/\b(hvs|hvb|hvr|s|b|r)\.[A-Za-z0-9_-]{20,}/g, "[REDACTED]");
}
