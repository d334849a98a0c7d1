import type { BackupPolicy } from "../policy.js";
import type { ObjectStore } from "../storage/object-store.js";
import { sleep } from "../wait.js";
import { snapshotKeyFor } from "../snapshot/manifest.js";
import type { StagePipeline } from "./pipeline.js";
import { timeoutSignal } from "../timeout-signal.js";

/**
 * The time that names the snapshot. Keys name whole seconds: a second backup in the same second
 * (and at the same raft index) would land on the first one's key, so it waits for the next second
 * instead (bounded, for clocks given through `now` that do not move).
 */
export async function pickTakenAt(store: ObjectStore, policy: BackupPolicy, now: () => Date, pass: StagePipeline): Promise<Date> {
  let takenAt = now();
  for (let i = 0; i < 2 && (await pass.race(secondTaken(store, policy, takenAt, pass.signal))); i++) {
    await pass.race(sleep(1_005 - (takenAt.getTime() % 1_000)));
    takenAt = now();
  }
  return takenAt;
}

/**
 * Whether a snapshot object already exists for this cluster and second. Best effort: a store that
 * denies listing (S3's s3:ListBucket is not otherwise needed for a backup) or does not answer within
 * 2 s counts as "not taken".
 */
async function secondTaken(store: ObjectStore, policy: BackupPolicy, takenAt: Date, signal: AbortSignal): Promise<boolean> {
  // The key up to the raft index, from the one implementation of the key layout.
  const probe = snapshotKeyFor(store.prefix, policy.cluster.name, takenAt, 0);
  const prefix = probe.slice(0, probe.lastIndexOf("-") + 1);
  try {
    // Short and bounded: the probe must never hold up a backup (a stalled store is caught by the
    // stall watchdog once the transfer runs).
    const found = await store.list(prefix, { signal: timeoutSignal(2_000, signal), limit: 1 });
    return found.length > 0;
  } catch {
    return false;
  }
}
