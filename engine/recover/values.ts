import { registerSecret } from "../redact.js";

/** JSON with object keys sorted: two secrets are equal when their canonical forms are. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function sameData(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** Every key of `wanted` is in `have` with the same value (extra keys in `have` are kept, not deleted). */
export function containsAll(have: Record<string, string> | undefined, wanted: Record<string, string> | undefined): boolean {
  return Object.entries(wanted ?? {}).every(([k, v]) => have?.[k] === v);
}

/**
 * Secret values read from a snapshot are registered with the redactor as they are read: whatever
 * error or line might quote one later prints [REDACTED] instead.
 */
export function registerValues(value: unknown): void {
  if (typeof value === "string") registerSecret(value);
  else if (Array.isArray(value)) value.forEach(registerValues);
  else if (value && typeof value === "object") Object.values(value).forEach(registerValues);
}
