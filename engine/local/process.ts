import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { sleep } from "../wait.js";

/** Starts a long-running server detached from us, its output appended to `logPath`. */
export function startDetached(cmd: string, args: string[], logPath: string, env: NodeJS.ProcessEnv = process.env, cwd?: string): number {
  const fd = openSync(logPath, "a", 0o600);
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", fd, fd], env, cwd });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(pid: number | undefined, graceMs = 5_000): Promise<void> {
  if (!isAlive(pid)) return;
  const kill = (sig: NodeJS.Signals) => {
    try {
      // Negative pid: the whole process group we started detached (servers may fork helpers).
      process.kill(-pid!, sig);
    } catch {
      try {
        process.kill(pid!, sig);
      } catch {
        // already gone
      }
    }
  };
  kill("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    kill("SIGKILL");
    while (isAlive(pid)) await sleep(50);
  }
}

/** Last lines of a log, for error messages that say what a server complained about. */
export function tailLog(path: string, lines = 8): string {
  if (!existsSync(path)) return "";
  const text = readFileSync(path, "utf8").trimEnd().split("\n");
  return text.slice(-lines).join("\n");
}
