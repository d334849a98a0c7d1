/**
 * What the dynamic providers share at run time. Everything here is serialized by value into each
 * provider's `__provider` text (Pulumi's closure serializer copies the functions a provider
 * method references), so it must stay small and must never reference a secret or a module object.
 *
 * Why `import()` and not `require()`: the dynamic-provider host evaluates the serialized text
 * with `require-from-string` as a CommonJS module whose filename is '' — `require` then resolves
 * from the host's own paths and cannot use package self-reference, so
 * `require("vault-raft-backup/engine")` fails inside this package (checked on Node 20.20). A
 * dynamic `import()` from that text resolves from the host's working directory (the Pulumi
 * project directory): it finds `node_modules/vault-raft-backup` in a user's project and the
 * package itself through self-reference (`exports` "./engine") in this repository, and it loads
 * our ES modules natively. Type-only imports keep the engine out of the serialized closure.
 */
import type * as Engine from "../../engine/index.js";

export type EngineModule = typeof Engine;

/** The specifier as a constant: TypeScript must not resolve it (dist/ may not exist yet). */
const ENGINE_MODULE = "vault-raft-backup/engine";

/** The engine, loaded in the provider host; the host then ends rather than spin once Pulumi's engine is gone (endProcessWhenOutputCloses). */
export async function loadEngine(): Promise<EngineModule> {
  const engine = (await import(ENGINE_MODULE)) as EngineModule;
  engine.endProcessWhenOutputCloses();
  return engine;
}

/** The sentinel the Pulumi engine sends for values not known yet (preview). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when a value, or anything inside it, is not known yet (preview with computed inputs). */
export function hasUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(hasUnknown);
  if (value && typeof value === "object") return Object.values(value).some(hasUnknown);
  return false;
}

/**
 * Drops undefined values recursively: the host turns outputs into a protobuf Struct, which
 * rejects undefined.
 */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => compact(v)) as T;
  if (value instanceof Date) return value.toISOString() as T;
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = compact(v);
    return out as T;
  }
  return value;
}

/**
 * Runs one provider operation under its own deadline: Pulumi's `customTimeouts` do not reach
 * dynamic providers, so a hung S3 or Vault call would otherwise hang `pulumi up`. `work` gets a
 * signal that aborts at the deadline, to stop what it started.
 */
export async function withDeadline<T>(what: string, ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stop = new AbortController();
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} did not finish within ${Math.round(ms / 1000)}s (deadlineMs)`);
      stop.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work(stop.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Re-throws an error with a message that is safe for Pulumi's output and state: the host only
 * forwards `message`, and the engine's redaction removes any registered secret.
 */
export function safeError(engine: EngineModule, err: unknown): Error {
  const msg = engine.redact(err instanceof Error ? err.message : String(err));
  const field = err instanceof engine.ConfigError && err.field ? ` (field: ${err.field})` : "";
  return new Error(msg + field);
}

/** One line on the provider's stderr, which Pulumi shows in its diagnostics. */
export function say(engine: EngineModule, who: string, message: string): void {
  process.stderr.write(engine.redact(`${who}: ${message}`) + "\n");
}

/** Why a `login` input (login material as values) is malformed, or undefined when it is fine. */
export function loginProblem(login: unknown): string | undefined {
  if (login === undefined || hasUnknown(login)) return undefined;
  if (!login || typeof login !== "object" || Array.isArray(login)) return "must be an object { roleId, secretId } (AppRole) or { jwt }";
  const o = login as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !["roleId", "secretId", "jwt"].includes(k));
  if (extra.length) return `unknown field(s) ${extra.join(", ")}: use roleId and secretId (AppRole) or jwt`;
  for (const k of ["roleId", "secretId", "jwt"]) if (o[k] !== undefined && (typeof o[k] !== "string" || o[k] === "")) return `${k} must be a non-empty string`;
  if ((o.roleId === undefined) !== (o.secretId === undefined)) return "AppRole login needs both roleId and secretId";
  if (o.roleId === undefined && o.jwt === undefined) return "give roleId and secretId (AppRole) or jwt";
  if (o.roleId !== undefined && o.jwt !== undefined) return "give either roleId and secretId (AppRole) or jwt, not both";
  return undefined;
}
