/**
 * Deadlines of the waits whose length grows with the snapshot: node 1 receiving and applying it,
 * and every joining node receiving the whole snapshot from the leader over Raft and installing it
 * before it unseals. A fixed 120 s is fine for a few MiB and hopeless for a GiB on a small
 * machine, so these waits get a base plus the snapshot's size at a deliberately low rate.
 */

/** What any wait gets regardless of size: the engine's usual step deadline. */
export const SIZED_BASE_MS = 120_000;

/**
 * The rate a sized wait assumes, bytes per second. Measured on a loaded 2-core machine, a joining
 * node took minutes for a 1.34 GiB snapshot (Raft install + FSM restore, ~5-10 MiB/s); 2 MiB/s
 * leaves room for slow disks and busier hosts without waiting hours for a wedged node.
 */
export const SIZED_BYTES_PER_SEC = 2 * 1024 * 1024;

/** Deadline of one sized wait for a snapshot of `bytes`. */
export function sizedStepMs(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes <= 0) return SIZED_BASE_MS;
  return SIZED_BASE_MS + Math.ceil((bytes / SIZED_BYTES_PER_SEC) * 1000);
}

/**
 * The whole restore's default budget for this snapshot: the fixed default plus one sized wait per
 * node (node 1 applies the snapshot, each other node installs it), so a large restore is not cut
 * by its total after every single wait was allowed to take its time.
 */
export function sizedTotalMs(defaultTotalMs: number, bytes: number, nodes: number): number {
  return defaultTotalMs + Math.max(1, nodes) * (sizedStepMs(bytes) - SIZED_BASE_MS);
}
