import type { StateBinEntry } from "./state-bin.js";

/**
 * What a snapshot holds, counted from its storage keys alone (values are encrypted and only
 * measured). `bytes` of an entry is its key's length plus its value's length: what it occupies
 * in the store, give or take the framing.
 */
export interface SnapshotInventory {
  totalKeys: number;
  totalBytes: number;
  /** Per top-level key segment (`core/`, `sys/`, `logical/`, `auth/`, ...), largest first. */
  prefixes: PrefixCount[];
  /** Per mount (the uuid in `logical/<uuid>/` and `auth/<uuid>/`), largest first. */
  mounts: MountCount[];
}

export interface PrefixCount {
  prefix: string;
  keys: number;
  bytes: number;
}

export type MountKind = "secret" | "auth";

export interface MountCount {
  uuid: string;
  kind: MountKind;
  /** Mount path and engine type, when a mount table was at hand (`kv/`, `kv`). */
  path?: string;
  type?: string;
  keys: number;
  bytes: number;
}

/** Storage key prefix of a mount's data: secrets engines live under `logical/`, auth methods under `auth/`. */
const MOUNT_ROOTS: Record<string, MountKind> = { logical: "secret", auth: "auth" };

/**
 * Counts entries by top-level prefix and by mount as they stream past. Memory grows with the
 * number of mounts and prefixes (a handful to a few thousand), never with the number of keys.
 */
export class InventoryCounter {
  private totalKeys = 0;
  private totalBytes = 0;
  private readonly prefixes = new Map<string, PrefixCount>();
  private readonly mounts = new Map<string, MountCount>();

  add(entry: StateBinEntry): void {
    const bytes = Buffer.byteLength(entry.key) + entry.valueBytes;
    this.totalKeys++;
    this.totalBytes += bytes;
    const slash = entry.key.indexOf("/");
    const top = slash < 0 ? entry.key : entry.key.slice(0, slash + 1);
    const p = this.prefixes.get(top) ?? { prefix: top, keys: 0, bytes: 0 };
    p.keys++;
    p.bytes += bytes;
    this.prefixes.set(top, p);
    if (slash < 0) return;
    const kind = MOUNT_ROOTS[entry.key.slice(0, slash)];
    if (!kind) return;
    const end = entry.key.indexOf("/", slash + 1);
    if (end < 0) return;
    const uuid = entry.key.slice(slash + 1, end);
    const id = `${kind}:${uuid}`;
    const m = this.mounts.get(id) ?? { uuid, kind, keys: 0, bytes: 0 };
    m.keys++;
    m.bytes += bytes;
    this.mounts.set(id, m);
  }

  result(): SnapshotInventory {
    const bySize = <T extends { keys: number; bytes: number }>(a: T, b: T) => b.keys - a.keys || b.bytes - a.bytes;
    return {
      totalKeys: this.totalKeys,
      totalBytes: this.totalBytes,
      prefixes: [...this.prefixes.values()].map((p) => ({ ...p })).sort(bySize),
      mounts: [...this.mounts.values()].map((m) => ({ ...m })).sort(bySize),
    };
  }
}

/** A mount of the cluster's mount table (`sys/mounts`, `sys/auth`). */
export interface MountTableEntry {
  uuid: string;
  kind: MountKind;
  path: string;
  type: string;
}

/** Puts paths and types on the mounts of an inventory; mounts the table does not know keep their uuid only. */
export function labelMounts(inventory: SnapshotInventory, table: readonly MountTableEntry[]): SnapshotInventory {
  const byUuid = new Map(table.map((t) => [`${t.kind}:${t.uuid}`, t]));
  return {
    ...inventory,
    mounts: inventory.mounts.map((m) => {
      const t = byUuid.get(`${m.kind}:${m.uuid}`);
      return t ? { ...m, path: t.path, type: t.type } : m;
    }),
  };
}
