import { describe, expect, it } from "vitest";
import { mapLimit } from "../../engine/map-limit.js";

const tick = () => new Promise((r) => setTimeout(r, 2));

describe("mapLimit: a few calls at a time, the first failure stops the rest", () => {
  it("returns the results in the items' order, with never more than `limit` calls in flight", async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, n * 2));
      inFlight--;
      return n * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30, 0, 60]);
    expect(most).toBe(3);
  });

  it("after a failure starts nothing new, aborts the calls in flight, and throws that first failure once they settled", async () => {
    const started: number[] = [];
    const abortedInFlight: number[] = [];
    let settled = 0;
    const failure = new Error("store did not answer");
    const result = mapLimit(
      Array.from({ length: 20 }, (_, i) => i),
      4,
      async (i, signal) => {
        started.push(i);
        try {
          if (i === 2) {
            await tick();
            throw failure;
          }
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(resolve, 1000);
            signal.addEventListener("abort", () => (clearTimeout(t), abortedInFlight.push(i), reject(new Error("aborted"))), { once: true });
          });
          return i;
        } finally {
          settled++;
        }
      },
    );
    await expect(result).rejects.toBe(failure);
    expect(started).toEqual([0, 1, 2, 3]);
    expect(abortedInFlight.sort()).toEqual([0, 1, 3]);
    expect(settled).toBe(4);
  });

  it("an interruption (the caller's signal) stops it with the interruption's reason; an empty list needs no call", async () => {
    const controller = new AbortController();
    let calls = 0;
    const result = mapLimit(
      [1, 2, 3, 4, 5, 6],
      2,
      async (_n, signal) => {
        calls++;
        if (calls === 2) controller.abort(new Error("interrupted (SIGTERM)"));
        await tick();
        return signal.aborted;
      },
      controller.signal,
    );
    await expect(result).rejects.toThrow("interrupted (SIGTERM)");
    expect(calls).toBe(2);
    expect(await mapLimit([], 4, async () => 1, controller.signal)).toEqual([]);
  });
});
