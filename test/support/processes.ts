import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../../engine/wait.js";

// What the tests look up about processes (Linux /proc): who a process started, whether it still
// runs, what it was started with.

/** Pids whose parent is `ppid`. */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
      const stat = readFileSync(join("/proc", d, "stat"), "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(rest[1]) === ppid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every process below `pid`: its children, theirs, and so on. */
export function descendantsOf(pid: number): number[] {
  const direct = childrenOf(pid);
  return [...direct, ...direct.flatMap(descendantsOf)];
}

/** True while `pid` runs (a zombie, exited but not yet reaped, does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The arguments `pid` was started with (its executable first); empty once it is gone. */
export function argvOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Pids of the processes whose command line mentions `text`. */
export function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(join("/proc", d, "cmdline"), "utf8").includes(text)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Polls `fn` every 100 ms (the engine's waitFor) until it returns a value; fails naming `what` after `timeoutMs`. */
export function until<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  return waitFor(async () => fn(), { what, timeoutMs, intervalMs: 100 });
}

/**
 * Runs `fn` while process `pid` is stopped (SIGSTOP): its sockets still accept connections (the
 * kernel completes the handshake) but nothing answers, as with a hung server or load balancer. The
 * process is continued afterwards, whatever `fn` did.
 */
export async function frozen<T>(pid: number, fn: () => Promise<T>): Promise<T> {
  process.kill(pid, "SIGSTOP");
  try {
    return await fn();
  } finally {
    process.kill(pid, "SIGCONT");
  }
}
