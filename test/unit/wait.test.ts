import { describe, expect, it } from "vitest";
import { waitFor } from "../../engine/wait.js";

describe("waitFor's timeout message", () => {
  it("says what the last probe saw and the last error, so a wait that never ends can be diagnosed from its message", async () => {
    let n = 0;
    let seen: string | undefined;
    const wait = waitFor(
      async () => {
        n += 1;
        if (n === 1) throw new Error("connection refused");
        seen = `node-3 unhealthy (probe ${n})`;
        return undefined;
      },
      { what: "3 raft voters with healthy autopilot", timeoutMs: 120, intervalMs: 20, lastSeen: () => seen },
    );
    await expect(wait).rejects.toThrow(
      /timed out after 0s waiting for 3 raft voters with healthy autopilot \(last seen: node-3 unhealthy \(probe \d+\); last error: connection refused\)/,
    );
  });

  it("names only the wait when there was nothing to report", async () => {
    await expect(waitFor(async () => undefined, { what: "node-1 to become active", timeoutMs: 50, intervalMs: 20 })).rejects.toThrow(
      /^timed out after 0s waiting for node-1 to become active$/,
    );
  });
});
