import { OperationError } from "../errors.js";

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

/**
 * Deadlines of one restore: each wait gets the step budget, never more than what is left of the
 * total. Waits that grow with the snapshot ("sized": node 1 applying it, followers installing it)
 * get a budget derived from its size once known (sizedStepMs above), unless the operator set the
 * step deadline explicitly (--step-timeout), which then holds for every wait.
 */
export class Deadlines {
  private totalEndsAt: number;
  private readonly started = Date.now();
  private sizedMs?: number;
  private readonly baseTotalMs: number;
  constructor(
    readonly stepMs: number,
    public totalMs: number,
    private readonly explicit: { step?: boolean; total?: boolean } = {},
  ) {
    this.baseTotalMs = totalMs;
    this.totalEndsAt = this.started + totalMs;
  }

  /** The snapshot is `bytes` long and goes to `nodes` nodes: sized waits (and the default total) grow with it. */
  sizeTo(bytes: number, nodes: number): void {
    if (!this.explicit.step) this.sizedMs = Math.max(this.stepMs, sizedStepMs(bytes));
    if (!this.explicit.total) {
      this.totalMs = Math.max(this.baseTotalMs, sizedTotalMs(this.baseTotalMs, bytes, nodes));
      this.totalEndsAt = this.started + this.totalMs;
    }
  }

  /** The deadline of a sized wait (the step deadline until the snapshot's size is known, or when set explicitly). */
  get sizedStepMs(): number {
    return this.sizedMs ?? this.stepMs;
  }

  /** Time a wait may take now. */
  forStep(what: string, sized = false): number {
    const left = this.totalEndsAt - Date.now();
    if (left <= 0) throw new OperationError(`the restore ran out of its total time (${Math.round(this.totalMs / 1000)}s) before ${what}`, { stage: what });
    return Math.min(sized && this.sizedMs !== undefined ? this.sizedMs : this.stepMs, left);
  }
}
