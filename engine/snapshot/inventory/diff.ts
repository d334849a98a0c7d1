import type { Identities } from "../../crypto/identities.js";
import type { Progress } from "../../progress.js";
import type { SnapshotStore, StoredSnapshot } from "../../catalogue/snapshot-store.js";
import type { MountCount, MountKind, SnapshotInventory } from "./counter.js";
import { inspectSnapshotFile, inspectStoredSnapshot } from "./inspect.js";

/** A snapshot to take an inventory of: a stored one, or a file on disk. */
export type InventorySubject = { file: string } | { store: SnapshotStore; snapshot: StoredSnapshot };

export interface SubjectInventory {
  source: string;
  /** "manifest": from the manifest the backup wrote (no download); "inspect": read from the snapshot. */
  from: "manifest" | "inspect";
  inventory: SnapshotInventory;
}

/** The inventory of a snapshot: its manifest's when it has one, else read from the snapshot itself. */
export async function inventoryOf(subject: InventorySubject, opts: { progress?: Progress; identities?: Identities } = {}): Promise<SubjectInventory> {
  if ("file" in subject) {
    const r = await inspectSnapshotFile(subject.file, { progress: opts.progress });
    return { source: r.source, from: "inspect", inventory: r };
  }
  const { snapshot } = subject;
  const source = snapshot.url;
  if (snapshot.manifest?.inventory) return { source, from: "manifest", inventory: snapshot.manifest.inventory };
  const r = await inspectStoredSnapshot(subject.store, snapshot, opts);
  return { source, from: "inspect", inventory: r };
}

export interface Counts {
  keys: number;
  bytes: number;
}

export interface MountDiff {
  uuid: string;
  kind: MountKind;
  path?: string;
  type?: string;
  before: Counts;
  after: Counts;
  change: Counts;
}

/** `vrb diff --json` (docs/inspect.md). */
export interface InventoryDiff {
  ok: true;
  a: { source: string; from: "manifest" | "inspect" };
  b: { source: string; from: "manifest" | "inspect" };
  total: { before: Counts; after: Counts; change: Counts };
  /** Every mount of either side, the largest change (in keys) first. */
  mounts: MountDiff[];
}

const counts = (m: Pick<MountCount, "keys" | "bytes"> | undefined): Counts => ({ keys: m?.keys ?? 0, bytes: m?.bytes ?? 0 });
const change = (a: Counts, b: Counts): Counts => ({ keys: b.keys - a.keys, bytes: b.bytes - a.bytes });

/** Per mount (matched by uuid), keys and bytes in `a`, in `b`, and the change from a to b. */
export function diffInventories(a: SubjectInventory, b: SubjectInventory): InventoryDiff {
  const id = (m: MountCount) => `${m.kind}:${m.uuid}`;
  const before = new Map(a.inventory.mounts.map((m) => [id(m), m]));
  const after = new Map(b.inventory.mounts.map((m) => [id(m), m]));
  const mounts: MountDiff[] = [];
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    const x = before.get(k);
    const y = after.get(k);
    const m = (y ?? x)!;
    const [bc, ac] = [counts(x), counts(y)];
    mounts.push({ uuid: m.uuid, kind: m.kind, path: y?.path ?? x?.path, type: y?.type ?? x?.type, before: bc, after: ac, change: change(bc, ac) });
  }
  mounts.sort((p, q) => Math.abs(q.change.keys) - Math.abs(p.change.keys) || Math.abs(q.change.bytes) - Math.abs(p.change.bytes));
  const tb = { keys: a.inventory.totalKeys, bytes: a.inventory.totalBytes };
  const ta = { keys: b.inventory.totalKeys, bytes: b.inventory.totalBytes };
  return { ok: true, a: { source: a.source, from: a.from }, b: { source: b.source, from: b.from }, total: { before: tb, after: ta, change: change(tb, ta) }, mounts };
}
