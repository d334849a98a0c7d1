// CPU layout: which process runs on which CPU (taskset). Pinned, the servers (OpenBao, the S3
// server, the WAN relay) share CPU 0 and the bench with every client it starts takes CPU 1, so a
// client's own cost shows; unpinned, everything may run anywhere, as users run it.
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { processTree } from "./measure.js";

export const SERVER_CPU = "0";
export const CLIENT_CPU = "1";

/** Pins every thread of `pid` (not its descendants) to `cpu`; false when taskset refused. */
function pinOne(pid: number, cpu: string): boolean {
  return spawnSync("taskset", ["-a", "-p", "-c", cpu, String(pid)], { stdio: "ignore" }).status === 0;
}

/** Pins every thread of `pid` and of its descendants to `cpu`; false when taskset refused. */
export function pin(pid: number, cpu: string): boolean {
  return processTree(pid)
    .map((p) => pinOne(p, cpu))
    .every(Boolean);
}

/** Why the bench cannot pin, or undefined when it can. */
export function pinningUnavailable(): string | undefined {
  if (cpus().length < 2) return `only ${cpus().length} CPU`;
  const r = spawnSync("taskset", ["-p", String(process.pid)], { encoding: "utf8" });
  if (r.error) return "taskset is not installed (util-linux)";
  return r.status === 0 ? undefined : `taskset failed: ${r.stderr.trim()}`;
}

/**
 * Where the bench's processes run. The servers a backup reads from and writes to share SERVER_CPU;
 * a copy's second store is not one of them: it stands for another provider on other machines, so
 * it is kept off the first store's CPU (on CLIENT_CPU, the only other one on a 2-core machine) and
 * a copy is not charged for the first store's CPU (docs/benchmarks.md, "One copy").
 */
export class CpuLayout {
  private readonly servers: number[] = [];
  private readonly secondStores: number[] = [];

  constructor(readonly unavailable = pinningUnavailable()) {}

  get pinned(): boolean {
    return !this.unavailable;
  }

  /** The bench itself (and every client it starts later, which inherit its CPU). Call before starting any server. */
  pinBench(): void {
    if (this.pinned) pinOne(process.pid, CLIENT_CPU);
  }

  /** A server the backup reads from or writes to (OpenBao, the S3 server, the WAN relay). */
  addServer(pid: number): void {
    this.servers.push(pid);
    if (this.pinned) pin(pid, SERVER_CPU);
  }

  /** A copy's store (Azurite): off the first store's CPU. */
  addSecondStore(pid: number): void {
    this.secondStores.push(pid);
    if (this.pinned) pin(pid, CLIENT_CPU);
  }

  /** Runs `f` with every server and the bench free to run on any CPU (as users run it), then pins them back. */
  async unpinned<T>(f: () => Promise<T>): Promise<T> {
    if (!this.pinned) return f();
    const every = `0-${cpus().length - 1}`;
    pinOne(process.pid, every);
    for (const p of [...this.servers, ...this.secondStores]) pin(p, every);
    try {
      return await f();
    } finally {
      pinOne(process.pid, CLIENT_CPU);
      for (const p of this.servers) pin(p, SERVER_CPU);
      for (const p of this.secondStores) pin(p, CLIENT_CPU);
    }
  }

  describe(): string {
    return this.unavailable
      ? `unpinned: ${this.unavailable}`
      : `servers on CPU ${SERVER_CPU}, the bench and every client on CPU ${CLIENT_CPU} (a copy's second store too); "unpinned" rows free every process to run anywhere`;
  }
}
