import { spawn, spawnSync } from "node:child_process";
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

/** The command line of a process, or undefined when there is none (or it cannot be read). */
function commandLineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    const ps = spawnSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8" });
    return ps.status === 0 ? ps.stdout.trim() : undefined;
  }
}

/**
 * Whether `pid` runs. With `marker` (a config path or data dir unique to our server), also whether
 * it is still OUR server: pids are reused (pid_max can be as low as 32768), and a stale pid from a
 * state file must never make us signal someone else's process.
 */
export function isAlive(pid: number | undefined, opts: { marker?: string } = {}): boolean {
  const { marker } = opts;
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (marker === undefined) return true;
  return commandLineOf(pid)?.includes(marker) ?? false;
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. With `marker`, a pid
 * that no longer runs our server is left alone (see isAlive).
 */
export async function stopProcess(pid: number | undefined, opts: { graceMs?: number; marker?: string } = {}): Promise<void> {
  const graceMs = opts.graceMs ?? 5_000;
  if (!isAlive(pid, opts)) return;
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
