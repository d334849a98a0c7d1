import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { freePort, isAlive, stopProcess } from "../../engine/index.js";

describe("local process control", () => {
  it("never signals a process whose command line is not our server's (pids are reused)", async () => {
    const other = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    const pid = other.pid!;
    try {
      expect(isAlive(pid)).toBe(true);
      expect(isAlive(pid, { marker: "/tmp/vrb-x/node-1/bao.hcl" })).toBe(false);
      await stopProcess(pid, { graceMs: 500, marker: "/tmp/vrb-x/node-1/bao.hcl" });
      expect(isAlive(pid)).toBe(true);
      await stopProcess(pid, { graceMs: 500, marker: "sleep 30" });
      expect(isAlive(pid)).toBe(false);
    } finally {
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    }
  });

  it("hands out distinct, reserved ports (with their gRPC offsets free)", async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort([10000])));
    expect(new Set(ports).size).toBe(20);
  });
});
