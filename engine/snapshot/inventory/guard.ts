import type { BackupPolicy } from "../../policy.js";
import type { MountCount, SnapshotInventory } from "./counter.js";

export type GuardRules = NonNullable<BackupPolicy["guard"]>;

export interface ShrinkFinding {
  /** "mounts": all mounts together; "mount": one mount. */
  scope: "mounts" | "mount";
  mount?: Pick<MountCount, "uuid" | "kind" | "path" | "type">;
  before: number;
  after: number;
  dropPercent: number;
}

/** Keys in mounts (`logical/…`, `auth/…`): the data people write. `sys/` (tokens, leases) churns by itself and is left out. */
function mountKeys(inv: SnapshotInventory): number {
  return inv.mounts.reduce((n, m) => n + m.keys, 0);
}

function drop(before: number, after: number): number {
  return before === 0 ? 0 : Math.round(((before - after) / before) * 1000) / 10;
}

/**
 * The shrink guard's judgement: every mount (with at least `minKeys` keys before) and the sum of
 * all mounts whose key count fell by more than `maxDropPercent` from `previous` to `current`.
 * A mount that vanished (unmounted) counts as a 100 % drop. Empty: nothing shrank.
 */
export function findShrinks(previous: SnapshotInventory, current: SnapshotInventory, rules: Pick<GuardRules, "maxDropPercent" | "minKeys">): ShrinkFinding[] {
  const out: ShrinkFinding[] = [];
  const [before, after] = [mountKeys(previous), mountKeys(current)];
  if (drop(before, after) > rules.maxDropPercent) out.push({ scope: "mounts", before, after, dropPercent: drop(before, after) });
  const now = new Map(current.mounts.map((m) => [`${m.kind}:${m.uuid}`, m]));
  for (const m of previous.mounts) {
    if (m.keys < rules.minKeys) continue;
    const keys = now.get(`${m.kind}:${m.uuid}`)?.keys ?? 0;
    const d = drop(m.keys, keys);
    if (d > rules.maxDropPercent) {
      out.push({ scope: "mount", mount: { uuid: m.uuid, kind: m.kind, path: m.path, type: m.type }, before: m.keys, after: keys, dropPercent: d });
    }
  }
  return out;
}

/** One line per finding, for the warning, the manifest's `suspect.reason` and the error. */
export function describeShrinks(findings: ShrinkFinding[], maxDropPercent: number, againstKey?: string): string {
  const parts = findings.map((f) => {
    const what = f.scope === "mounts" ? "keys in all mounts" : `keys in ${f.mount!.kind} mount ${f.mount!.path ?? f.mount!.uuid}`;
    return `${what}: ${f.before} → ${f.after} (-${f.dropPercent}%)`;
  });
  return `shrink guard: more than ${maxDropPercent}% fewer keys than the previous good snapshot${againstKey ? ` (${againstKey})` : ""}: ${parts.join("; ")}`;
}
