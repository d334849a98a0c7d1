import { setMaxListeners } from "node:events";

/**
 * `fn` over `items`, at most `limit` calls at a time, the results in the items' order.
 *
 * The first failure stops the rest: nothing new starts, the signal handed to the calls still in
 * flight aborts (so a store's other reads give up at once instead of running on to their own
 * deadline), and once they have settled that first failure is thrown. `signal` (an interrupted
 * command) stops it the same way.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, signal: AbortSignal) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const stop = new AbortController();
  // Every call in flight listens to it, a few listeners each (the store's deadline, the SDK): more
  // than Node's default warning threshold of 10 by design, and bounded by `limit`.
  setMaxListeners(0, stop.signal);
  // Followed by hand, not AbortSignal.any: on Node 20 a combined signal can be collected while
  // its sources live (nodejs/node#57736), and the calls in flight would then never hear of it.
  const follow = () => stop.abort(signal?.reason);
  if (signal?.aborted) follow();
  else signal?.addEventListener("abort", follow, { once: true });
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!stop.signal.aborted && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, stop.signal);
      } catch (error) {
        failure ??= { error };
        stop.abort(error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  } finally {
    signal?.removeEventListener("abort", follow);
  }
  if (failure) throw failure.error;
  if (next < items.length) throw stop.signal.reason;
  return out;
}
