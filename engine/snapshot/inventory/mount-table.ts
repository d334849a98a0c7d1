import { VaultHttpError, type VaultClient } from "../../vault/client.js";
import type { MountKind, MountTableEntry } from "./counter.js";

interface MountListing {
  data?: Record<string, { uuid?: string; type?: string }>;
}

export interface MountTableRead {
  entries: MountTableEntry[];
  /** Why the table (or half of it) could not be read: the inventory then names mounts by uuid only. */
  warnings: string[];
}

/**
 * Reads the cluster's mount table, `sys/mounts` (secrets engines) and `sys/auth` (auth methods):
 * uuid → path and type, the key to the `logical/<uuid>/` and `auth/<uuid>/` prefixes of a snapshot.
 * Never fails: a token without `read` on those paths (403) or any other error gives a warning and
 * an empty half, because a backup must not fail for want of labels.
 */
export async function readMountTable(client: VaultClient): Promise<MountTableRead> {
  const out: MountTableRead = { entries: [], warnings: [] };
  const halves: [string, MountKind][] = [
    ["sys/mounts", "secret"],
    ["sys/auth", "auth"],
  ];
  for (const [path, kind] of halves) {
    try {
      const res = await client.get<MountListing & Record<string, unknown>>(path);
      for (const [mount, entry] of Object.entries(res.body.data ?? {})) {
        if (entry && typeof entry.uuid === "string" && entry.uuid) out.entries.push({ uuid: entry.uuid, kind, path: mount, type: entry.type ?? "unknown" });
      }
    } catch (err) {
      const why =
        err instanceof VaultHttpError && err.status === 403
          ? `the token may not read ${path} (403; grant read on it, see VaultBackupAccess)`
          : `reading ${path} failed: ${err instanceof Error ? err.message : String(err)}`;
      out.warnings.push(`inventory: ${why}; ${kind} mounts are named by uuid only`);
    }
  }
  return out;
}
