import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";

import { isAlive, stopProcess } from "../../engine/throwaway/process.js";
import { sleep } from "../../engine/wait.js";
import { ephemeralPortRange, freePort, portCandidates } from "../../engine/throwaway/ports.js";

describe("local process control", () => {
  it("never signals a process whose command line is not our server's (pids are reused)", async () => {
    const other = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    const pid = other.pid!;
    try {
      // spawn returns once the exec has begun; on a loaded machine the new argv can still be
      // unset for a moment (/proc/<pid>/cmdline reads empty), so wait for it first.
      const deadline = Date.now() + 5_000;
      while (!isAlive(pid, { marker: "sleep 30" }) && Date.now() < deadline) await sleep(10);
      expect(isAlive(pid, { marker: "sleep 30" })).toBe(true);
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

  it("hands out ports below the kernel's ephemeral range, where no outgoing connection can take them before the server binds", async () => {
    const { low } = ephemeralPortRange();
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort([10000])));
    for (const p of ports) expect(p + 10000).toBeLessThan(low);
    const plain = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const p of plain) expect(p).toBeLessThan(low);
  });

  it("reads the range from the kernel's file, and looks above it when it leaves no room below", () => {
    expect(ephemeralPortRange(() => "32768\t60999\n")).toEqual({ low: 32768, high: 60999 });
    expect(ephemeralPortRange(() => "garbage")).toEqual({ low: 32768, high: 60999 });
    expect(portCandidates(10000, { low: 32768, high: 60999 })).toEqual({ from: 10000, count: 12768 });
    expect(portCandidates(0, { low: 11000, high: 50000 })).toEqual({ from: 50001, count: 15535 });
  });
});
