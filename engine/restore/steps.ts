import { OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { waitFor } from "../wait.js";

export interface RestoreStep {
  step: string;
  node?: string;
  startedAt: string;
  durationMs: number;
  result: "ok" | "failed" | "skipped";
  detail?: string;
  /** Of durationMs, the part spent waiting on Vault's own work (requests, restore apply, unseal, join). */
  vaultMs?: number;
}

/** Deadlines of one restore: each wait gets the step budget, never more than what is left of the total. */
export class Deadlines {
  private readonly totalEndsAt: number;
  constructor(
    readonly stepMs: number,
    readonly totalMs: number,
  ) {
    this.totalEndsAt = Date.now() + totalMs;
  }
  /** Time a wait may take now. */
  forStep(what: string): number {
    const left = this.totalEndsAt - Date.now();
    if (left <= 0) throw new OperationError(`the restore ran out of its total time (${Math.round(this.totalMs / 1000)}s) before ${what}`, { stage: what });
    return Math.min(this.stepMs, left);
  }
}

/** Measures one step: which part was Vault's own work and which our polling. */
export class StepClock {
  vaultMs = 0;
  detail?: string;
  constructor(
    private readonly deadlines: Deadlines,
    readonly name: string,
  ) {}

  /** A request whose whole duration is Vault doing the work (init, restore upload, unseal, join). */
  async vault<T>(work: Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await work;
    } finally {
      this.vaultMs += Date.now() - t0;
    }
  }

  /**
   * Polls until `probe` returns a value. Vault finished somewhere between the last probe that saw
   * "not yet" and the first that saw "done": the midpoint counts as Vault's work, the rest (probe
   * latency, the interval we slept past the moment) as our overhead.
   */
  async until<T>(what: string, probe: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
    const t0 = Date.now();
    let lastNotReadyEnd: number | undefined;
    const value = await waitFor(
      async () => {
        try {
          const v = await probe();
          if (v === undefined) lastNotReadyEnd = Date.now();
          return v;
        } catch (err) {
          lastNotReadyEnd = Date.now();
          throw err;
        }
      },
      { what, timeoutMs: this.deadlines.forStep(what), intervalMs, stage: this.name },
    );
    if (lastNotReadyEnd !== undefined) this.vaultMs += Math.round((lastNotReadyEnd + Date.now()) / 2) - t0;
    return value;
  }

  timeoutMs(): number {
    return this.deadlines.forStep(this.name);
  }
}

/** The ordered step log of a restore; progress lines for people as each step ends. */
export class StepLog {
  readonly steps: RestoreStep[] = [];
  constructor(
    readonly deadlines: Deadlines,
    private readonly progress: Progress = silentProgress,
  ) {}

  async run<T>(step: string, node: string | undefined, body: (clock: StepClock) => Promise<T>): Promise<T> {
    const clock = new StepClock(this.deadlines, node ? `${step} (${node})` : step);
    const started = Date.now();
    this.progress.info(`${clock.name} ...`);
    const record = (result: RestoreStep["result"], detail?: string): void => {
      const durationMs = Date.now() - started;
      this.steps.push({
        step,
        ...(node ? { node } : {}),
        startedAt: new Date(started).toISOString(),
        durationMs,
        result,
        ...(detail ? { detail } : {}),
        vaultMs: Math.min(clock.vaultMs, durationMs),
      });
    };
    try {
      const v = await body(clock);
      record("ok", clock.detail);
      this.progress.info(`${clock.name}: ok in ${formatMs(Date.now() - started)}${clock.detail ? ` (${clock.detail})` : ""}`);
      return v;
    } catch (err) {
      record("failed", err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  skip(step: string, detail: string, node?: string): void {
    this.steps.push({ step, ...(node ? { node } : {}), startedAt: new Date().toISOString(), durationMs: 0, result: "skipped", detail });
    this.progress.info(`${step}${node ? ` (${node})` : ""}: skipped (${detail})`);
  }
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
