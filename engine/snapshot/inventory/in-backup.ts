import type { BackupPolicy } from "../../policy.js";
import type { Progress } from "../../progress.js";
import type { ObjectStore } from "../../storage/object-store.js";
import type { VaultClient } from "../../vault/client.js";
import { SnapshotStore, isTrustedSnapshot } from "../../catalogue/snapshot-store.js";
import { labelMounts, type SnapshotInventory } from "./counter.js";
import { describeShrinks, findShrinks, type ShrinkFinding } from "./guard.js";
import { readMountTable } from "./mount-table.js";

export interface BackupInventory {
  /** The counts with mount paths (when the mount table could be read), for the manifest. */
  inventory?: SnapshotInventory;
  /** The shrink guard's verdict, when the policy has a guard and there was a previous good snapshot to compare with. */
  guard?: { against: string; findings: ShrinkFinding[]; action: "warn" | "fail" };
  /** Set when the guard found a shrink and its action is `fail`: goes into the manifest. */
  suspect?: { reason: string; against: string };
  warnings: string[];
}

/**
 * The backup's inventory step, after the pass: names the counted mounts from the live mount
 * table, and with `policy.guard` compares the key counts with the previous good (not suspect)
 * snapshot's manifest. Reads only; the caller writes the manifest and decides the exit.
 */
export async function backupInventory(opts: {
  store: ObjectStore;
  policy: BackupPolicy;
  leader: VaultClient;
  counted?: SnapshotInventory;
  problem?: string;
  progress: Progress;
}): Promise<BackupInventory> {
  const out: BackupInventory = { warnings: [] };
  if (!opts.counted) {
    out.warnings.push(`inventory: the keys of this snapshot could not be counted (${opts.problem ?? "state.bin not read"}); no shrink guard for it`);
    return out;
  }
  const table = await readMountTable(opts.leader);
  out.warnings.push(...table.warnings);
  out.inventory = labelMounts(opts.counted, table.entries);
  opts.progress.info(`inventory: ${out.inventory.totalKeys} keys, ${out.inventory.mounts.length} mounts`);
  const rules = opts.policy.guard;
  if (!rules) return out;
  const store = new SnapshotStore(opts.store);
  const { found: previous } = await store.findNewest(opts.policy.cluster.name, (s) => isTrustedSnapshot(s) && Boolean(s.manifest?.inventory));
  if (!previous?.manifest?.inventory) {
    opts.progress.info("shrink guard: no previous good snapshot with an inventory to compare with");
    return out;
  }
  const findings = findShrinks(previous.manifest.inventory, out.inventory, rules);
  out.guard = { against: previous.key, findings, action: rules.action };
  if (!findings.length) return out;
  const reason = describeShrinks(findings, rules.maxDropPercent, previous.key);
  if (rules.action === "fail") out.suspect = { reason, against: previous.key };
  else out.warnings.push(reason);
  return out;
}
