import { describe, expect, it } from "vitest";
import { ExitCode, InterruptedError } from "../../engine/index.js";
import { waitFor } from "../../engine/wait.js";
import { interruption } from "../../engine/errors.js";
import { StepLog } from "../../engine/restore/steps.js";
import { Deadlines } from "../../engine/restore/deadlines.js";

// The safe points of an interrupted operation (issue 26 point 1): waits end at once, a restore step
// does not start, a step that completes the one before it (an unseal after a join) still runs.

const sigterm = () => {
  const c = new AbortController();
  c.abort(new InterruptedError("interrupted (SIGTERM)", { signal: "SIGTERM" }));
  return c;
};

async function rejection(p: Promise<unknown>): Promise<InterruptedError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InterruptedError);
  return err as InterruptedError;
}

describe("interruption: the error of an operation stopped by a signal", () => {
  it("carries the shell's exit code of the signal, and says where it stopped", () => {
    const err = interruption(sigterm().signal, "during the download", "verify");
    expect(err.exitCode).toBe(ExitCode.sigterm);
    expect(err.exitCode).toBe(143);
    expect(err.message).toBe("interrupted (SIGTERM) during the download");
    expect(err.stage).toBe("verify");
    expect(new InterruptedError("x", { signal: "SIGINT" }).exitCode).toBe(130);
  });

  it("is a plain failure (exit 1) when a caller aborted without a signal, naming its reason", () => {
    const c = new AbortController();
    c.abort(new Error("deadline of the Pulumi update"));
    const err = interruption(c.signal, "before join node 2");
    expect(err.exitCode).toBe(ExitCode.failed);
    expect(err.message).toBe("interrupted (deadline of the Pulumi update) before join node 2");
  });
});

describe("waitFor with a signal", () => {
  it("ends as soon as the signal aborts instead of polling until its deadline, and probes no more", async () => {
    const c = new AbortController();
    let probes = 0;
    const waiting = waitFor(
      async () => {
        probes++;
        if (probes === 2) c.abort(new InterruptedError("interrupted (SIGTERM)", { signal: "SIGTERM" }));
        return undefined;
      },
      { what: "node 2 to be a standby", timeoutMs: 600_000, intervalMs: 10, signal: c.signal },
    );
    const err = await rejection(waiting);
    expect(err.message).toBe("interrupted (SIGTERM) while waiting for node 2 to be a standby");
    expect(err.exitCode).toBe(143);
    expect(probes).toBe(2);
  });
});

describe("restore steps after an interruption", () => {
  const log = (signal: AbortSignal) => new StepLog(new Deadlines(60_000, 600_000), undefined, signal);

  it("a step does not start: its body never runs and no step is recorded", async () => {
    const steps = log(sigterm().signal);
    let ran = false;
    const err = await rejection(
      steps.run("join node 3 to node 1", "http://127.0.0.1:8230", async () => {
        ran = true;
      }),
    );
    expect(ran).toBe(false);
    expect(err.message).toBe("interrupted (SIGTERM) before join node 3 to node 1 (http://127.0.0.1:8230)");
    expect(steps.steps).toEqual([]);
  });

  it("a step that completes the one before it (unseal after join) still runs, its waits included", async () => {
    const steps = log(sigterm().signal);
    let probes = 0;
    const v = await steps.run(
      "unseal node 2 with the original keys",
      "http://127.0.0.1:8220",
      (clock) => clock.until("node 2 unsealed", async () => (++probes === 3 ? "unsealed" : undefined), 1),
      { completes: true },
    );
    expect(v).toBe("unsealed");
    expect(steps.steps.map((s) => [s.step, s.result])).toEqual([["unseal node 2 with the original keys", "ok"]]);
  });

  it("a wait inside a step ends at once, and the step is recorded as failed", async () => {
    const c = new AbortController();
    const steps = log(c.signal);
    const err = await rejection(
      steps.run("wait until node 1 seals itself", "http://127.0.0.1:8200", (clock) =>
        clock.until(
          "node 1 to apply the snapshot and seal itself",
          async () => {
            c.abort(new InterruptedError("interrupted (SIGINT)", { signal: "SIGINT" }));
            return undefined;
          },
          1,
        ),
      ),
    );
    expect(err.exitCode).toBe(130);
    expect(steps.steps.map((s) => [s.step, s.result])).toEqual([["wait until node 1 seals itself", "failed"]]);
  });
});
