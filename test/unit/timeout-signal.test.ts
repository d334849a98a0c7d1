import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../engine/package-info.js";
import { timeoutSignal } from "../../engine/timeout-signal.js";

describe("timeoutSignal", () => {
  it("still fires after a garbage collection while combined with another signal (a store that stopped answering is given up on)", () => {
    // In a process of its own with --expose-gc: the collection has to run while the timeouts wait.
    const module = pathToFileURL(join(packageRoot(), "dist", "engine", "timeout-signal.js")).href;
    const script = `
      const { timeoutSignal } = await import(${JSON.stringify(module)});
      const parent = new AbortController();
      const signals = Array.from({ length: 20 }, () => timeoutSignal(150, parent.signal));
      let fired = 0;
      for (const s of signals) s.addEventListener("abort", () => fired++);
      setTimeout(() => globalThis.gc(), 30);
      setTimeout(() => console.log(JSON.stringify({ fired, reason: signals[0].reason?.name })), 600);
    `;
    const out = execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({ fired: 20, reason: "TimeoutError" });
  });

  it("aborts with the other signal's reason as soon as that one aborts", () => {
    const parent = new AbortController();
    const signal = timeoutSignal(60_000, undefined, parent.signal);
    expect(signal.aborted).toBe(false);
    parent.abort(new Error("stopped by the operator"));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe("stopped by the operator");
  });
});
