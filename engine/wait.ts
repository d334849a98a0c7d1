import { OperationError, throwIfInterrupted } from "./errors.js";

/** Resolves after `ms`, or as soon as `signal` aborts (never rejects: the caller looks at the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface WaitOptions {
  /** What we wait for, used in the timeout message ("node 2 to become a voter"). */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Stage named by the timeout error (default: `what`). */
  stage?: string;
  /** Ends the wait at once when it aborts (an InterruptedError naming the stage). */
  signal?: AbortSignal;
  /** What the last probe saw that was not yet good enough, for the timeout message ("autopilot: node-2 unhealthy"). */
  lastSeen?: () => string | undefined;
}

/**
 * Polls `probe` until it returns a value other than undefined, or the deadline passes.
 * Every wait in the engine has a deadline; the last probe error is kept for the message.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 250;
  let lastError: unknown;
  const stopped = () => throwIfInterrupted(opts.signal, `while waiting for ${opts.what}`, opts.stage ?? opts.what);
  for (;;) {
    stopped();
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const seen = opts.lastSeen?.();
      const why = [seen ? `last seen: ${seen}` : "", lastError instanceof Error ? `last error: ${lastError.message}` : ""].filter(Boolean).join("; ");
      throw new OperationError(`timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${opts.what}${why ? ` (${why})` : ""}`, {
        stage: opts.stage ?? opts.what,
      });
    }
    await sleep(interval, opts.signal);
    stopped();
  }
}
