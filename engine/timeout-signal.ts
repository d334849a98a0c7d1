/**
 * An AbortSignal that aborts after `ms` (reason: a "TimeoutError" DOMException, as
 * AbortSignal.timeout gives, with `timeoutMs`) or as soon as any of `signals` aborts.
 *
 * Why not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: on Node 20 the combined signal holds
 * its sources weakly and the timeout's timer holds its signal weakly, so a garbage collection while
 * the timeout runs loses it and it never fires (nodejs/node#57736). A request to a store that
 * stopped answering then waits forever instead of giving up after `ms`. Here the timer's callback
 * holds the controller, so the timeout lives as long as the timer does.
 */
export function timeoutSignal(ms: number, ...signals: (AbortSignal | undefined)[]): AbortSignal {
  const controller = new AbortController();
  // unref: the timeout must not keep a finished process alive; what waits on the signal does that.
  // The reason carries the deadline, so what was cut short can say how long it waited (StoreNoAnswerError).
  setTimeout(() => controller.abort(Object.assign(new DOMException("The operation was aborted due to timeout", "TimeoutError"), { timeoutMs: ms })), ms).unref();
  const others = signals.filter((s): s is AbortSignal => s !== undefined);
  return others.length ? AbortSignal.any([...others, controller.signal]) : controller.signal;
}

/** The deadline (ms) of the timeoutSignal whose expiry aborted `signal`; undefined when it was not aborted, or aborted otherwise. */
export function timedOutAfterMs(signal: AbortSignal | undefined): number | undefined {
  if (!signal?.aborted) return undefined;
  const ms = (signal.reason as { timeoutMs?: unknown } | undefined)?.timeoutMs;
  return typeof ms === "number" ? ms : undefined;
}
