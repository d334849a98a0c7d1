import { throwIfInterrupted } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { waitFor } from "../wait.js";
import type { Deadlines } from "./deadlines.js";

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

/** How often a long wait says it is still alive. */
export const HEARTBEAT_MS = 30_000;

export interface WaitStatus {
  /** A line on where the wait stands ("node 2 applied index 812 of the leader's 4051"); errors are ignored. */
  status?: () => Promise<string | undefined>;
  /** What the last probe saw, for the timeout message. */
  lastSeen?: () => string | undefined;
}

/** Measures one step: which part was Vault's own work and which our polling. */
export class StepClock {
  vaultMs = 0;
  detail?: string;
  constructor(
    private readonly deadlines: Deadlines,
    readonly name: string,
    private readonly progress: Progress = silentProgress,
    /** The step's waits grow with the snapshot (Deadlines.sizeTo). */
    readonly sized = false,
    /** Ends the step's waits at once (they change nothing on a node: stopping one leaves the node as it is). */
    private readonly signal?: AbortSignal,
  ) {}

  /** A request whose whole duration is Vault doing the work (init, restore upload, unseal, join). */
  async vault<T>(work: Promise<T>, opts: WaitStatus = {}): Promise<T> {
    const t0 = Date.now();
    const stop = this.heartbeat(t0, opts);
    try {
      return await work;
    } finally {
      stop();
      this.vaultMs += Date.now() - t0;
    }
  }

  /**
   * Polls until `probe` returns a value. Vault finished somewhere between the last probe that saw
   * "not yet" and the first that saw "done": the midpoint counts as Vault's work, the rest (probe
   * latency, the interval we slept past the moment) as our overhead.
   */
  async until<T>(what: string, probe: () => Promise<T | undefined>, intervalMs = 100, opts: WaitStatus = {}): Promise<T> {
    const t0 = Date.now();
    let lastNotReadyEnd: number | undefined;
    const stop = this.heartbeat(t0, opts);
    try {
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
        { what, timeoutMs: this.deadlines.forStep(what, this.sized), intervalMs, stage: this.name, signal: this.signal, lastSeen: opts.lastSeen },
      );
      if (lastNotReadyEnd !== undefined) this.vaultMs += Math.round((lastNotReadyEnd + Date.now()) / 2) - t0;
      return value;
    } finally {
      stop();
    }
  }

  timeoutMs(): number {
    return this.deadlines.forStep(this.name, this.sized);
  }

  /**
   * Every HEARTBEAT_MS of a wait, a progress line that it is alive, how long it may still take,
   * and (given `status`) where it stands: a long wait at 3 a.m. must not look like a hang.
   */
  private heartbeat(t0: number, opts: WaitStatus): () => void {
    let deadlineMs: number;
    try {
      deadlineMs = this.deadlines.forStep(this.name, this.sized);
    } catch {
      return () => undefined;
    }
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        const status = opts.status ? await opts.status().catch(() => undefined) : undefined;
        this.progress.info(`${this.name}: still waiting, ${formatMs(Date.now() - t0)} of at most ${formatMs(deadlineMs)}${status ? `; ${status}` : ""}`);
      })().finally(() => (busy = false));
    }, HEARTBEAT_MS);
    timer.unref();
    return () => clearInterval(timer);
  }
}

/** The ordered step log of a restore; progress lines for people as each step ends. */
export class StepLog {
  readonly steps: RestoreStep[] = [];
  constructor(
    readonly deadlines: Deadlines,
    private readonly progress: Progress = silentProgress,
    /** Interrupts the restore (SIGTERM): before a step starts, and during its waits (engine/restore/restore.ts). */
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * `sized`: the step's waits grow with the snapshot (receiving, applying or installing it).
   * `completes`: the step finishes the one before it (unseal after join or seal), which would leave
   * a node sealed or half-joined: an interruption does not stop the restore before it or during it.
   */
  async run<T>(step: string, node: string | undefined, body: (clock: StepClock) => Promise<T>, opts: { sized?: boolean; completes?: boolean } = {}): Promise<T> {
    const name = node ? `${step} (${node})` : step;
    if (!opts.completes) throwIfInterrupted(this.signal, `before ${name}`, name);
    const clock = new StepClock(this.deadlines, name, this.progress, opts.sized ?? false, opts.completes ? undefined : this.signal);
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
