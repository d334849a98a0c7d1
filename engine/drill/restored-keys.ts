import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { openSnapshotStream } from "../backup/stages/source.js";
import type { MountCount, SnapshotInventory } from "../snapshot/inventory/counter.js";
import { inspectSnapshotFile } from "../snapshot/inventory/inspect.js";
import type { VaultClient } from "../vault/client.js";

/** One mount's keys: what the manifest counted at backup time, and what the restored node holds. */
export interface MountKeyCheck {
  mount: string;
  type?: string;
  expected: number;
  found: number;
}

/**
 * Mounts whose storage changes when a node unseals or a token is used (the system backend, the
 * identity store, per-token cubbyholes): not the snapshot's data, so not compared.
 */
const CHANGING_TYPES = new Set(["system", "identity", "cubbyhole", "ns_system", "ns_identity", "ns_cubbyhole"]);

/**
 * Keys per mount of the restored node, counted from its own Raft snapshot (saved into `dir`, the
 * throwaway folder) by the same counter as the backup's: the restore's data as the node holds it.
 */
export async function countRestoredKeys(client: VaultClient, dir: string): Promise<SnapshotInventory> {
  const path = join(dir, "restored.snap");
  await pipeline(await openSnapshotStream(client), createWriteStream(path, { mode: 0o600 }));
  return inspectSnapshotFile(path);
}

/**
 * Compares the manifest's keys per secret mount with the restored node's. Mounts the backup could
 * not name (no mount table) and the mounts that change at unseal are left out; a mount that is
 * missing in the restored node counts as 0 keys.
 */
export function compareMountKeys(manifest: SnapshotInventory, restored: Pick<SnapshotInventory, "mounts">): { checked: MountKeyCheck[]; problems: string[] } {
  const found = new Map(restored.mounts.map((m): [string, MountCount] => [`${m.kind}:${m.uuid}`, m]));
  const checked: MountKeyCheck[] = [];
  for (const m of manifest.mounts) {
    if (m.kind !== "secret" || !m.path || !m.type || CHANGING_TYPES.has(m.type)) continue;
    checked.push({ mount: m.path, type: m.type, expected: m.keys, found: found.get(`${m.kind}:${m.uuid}`)?.keys ?? 0 });
  }
  checked.sort((a, b) => a.mount.localeCompare(b.mount));
  const problems = checked.filter((c) => c.found !== c.expected).map((c) => `mount ${c.mount} (${c.type}) holds ${c.found} keys, the manifest counted ${c.expected}`);
  return { checked, problems };
}
