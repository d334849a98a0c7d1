import { ConfigError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";

/** What a `--path` names once the snapshot's mount table is known. */
export interface KvTarget {
  /** As the operator wrote it, e.g. "secret/app/db" or "secret/team/" (a subtree). */
  spec: string;
  /** Mount path without the trailing slash, e.g. "secret". */
  mount: string;
  kind: "kv1" | "kv2";
  /** Path inside the mount; ends in "/" (or is "") for a subtree. */
  rest: string;
}

export interface MountEntry {
  type: string;
  options?: { version?: string } | null;
}

/** Policies Vault will not let anyone write; asking to recover them is an input mistake. */
const FIXED_POLICIES = new Set(["root"]);

/**
 * Checks the shape of `--path` and `--acl-policy` values before anything starts: the operator
 * learns about a typo in seconds, not after a throwaway cluster came up.
 */
export function checkRecoverInput(paths: string[], aclPolicies: string[]): void {
  if (paths.length === 0 && aclPolicies.length === 0) {
    throw new ConfigError("nothing to recover: give --path MOUNT/PATH (repeatable; a path ending in '/' is a whole subtree) or --acl-policy NAME", { field: "--path" });
  }
  for (const p of paths) {
    if (!/^[^/\s][^\s]*$/.test(p) || p.includes("//") || p.split("/").some((s) => s === "." || s === "..")) {
      throw new ConfigError(`--path '${p}': give MOUNT/PATH as for 'bao kv get', e.g. secret/app/db, or secret/app/ for a subtree`, { field: "--path" });
    }
  }
  for (const n of aclPolicies) {
    if (!/^[A-Za-z0-9_.@-][A-Za-z0-9_.@/-]*$/.test(n)) throw new ConfigError(`--acl-policy '${n}': not a policy name`, { field: "--acl-policy" });
    if (FIXED_POLICIES.has(n)) throw new ConfigError(`--acl-policy ${n}: the root policy cannot be written; it never needs recovering`, { field: "--acl-policy" });
  }
}

/** The secret engines of a cluster, keyed by mount path ("secret/"). */
export async function mountTable(client: VaultClient): Promise<Record<string, MountEntry>> {
  const body = (await client.get<{ data?: Record<string, MountEntry> } & Record<string, unknown>>("sys/mounts")).body;
  return (body.data ?? body) as Record<string, MountEntry>;
}

/**
 * Resolves each `--path` against the snapshot's mount table: the longest mount that holds it, which
 * must be a KV engine (v1 or v2). Paths are written as for `bao kv get` (no `data/` segment).
 */
export function resolveTargets(paths: string[], mounts: Record<string, MountEntry>): KvTarget[] {
  const names = Object.keys(mounts).sort((a, b) => b.length - a.length);
  return paths.map((spec) => {
    const withSlash = spec.endsWith("/") ? spec : `${spec}/`;
    const mountPath = names.find((m) => withSlash.startsWith(m));
    if (!mountPath) {
      throw new ConfigError(`--path ${spec}: no mount of the snapshot holds it (its mounts: ${names.sort().join(", ")})`, { field: "--path" });
    }
    const info = mounts[mountPath]!;
    if (info.type !== "kv") {
      throw new ConfigError(`--path ${spec}: mount ${mountPath} is a '${info.type}' engine; only KV (v1, v2) secrets can be recovered (and ACL policies with --acl-policy)`, {
        field: "--path",
      });
    }
    return { spec, mount: mountPath.replace(/\/+$/, ""), kind: info.options?.version === "2" ? "kv2" : "kv1", rest: spec.slice(mountPath.length) };
  });
}
