// Measurement: what a child process or a piece of in-process work cost (wall, CPU, peak RSS), the
// servers' CPU meanwhile (read from /proc), and medians over repeated runs. No layout, no scenario.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { BOUNDED_HEAP_FLAGS } from "../../../engine/bounded-heap.js";
import { openSnapshotStream } from "../../../engine/backup/stages/source.js";
import { VaultClient } from "../../../engine/vault/client.js";
import type { LocalEnvironment } from "../../../devenv/environment.js";

/** What one child process cost: wall and CPU milliseconds, peak RSS; the servers' CPU meanwhile. */
export interface ChildCost {
  ms: number;
  cpuMs: number;
  /** The part of cpuMs spent in the kernel (system time): for these clients, mostly moving bytes through sockets and files. */
  kernelCpuMs: number;
  maxRssKiB: number;
  /** CPU milliseconds the servers (OpenBao, the S3 server, the WAN relay, Azurite) used while it ran. */
  serversCpuMs: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Medians over repeated runs, figure by figure (numbers at any depth; anything else from the first run). */
export function medianFigures<T>(runs: T[]): T {
  const walk = (xs: unknown[]): unknown => {
    const first = xs[0];
    if (typeof first === "number") return median(xs as number[]);
    if (first && typeof first === "object") {
      return Object.fromEntries(Object.keys(first).map((k) => [k, walk(xs.map((x) => (x as Record<string, unknown>)[k]))]));
    }
    return first;
  };
  return walk(runs) as T;
}

/** A process and all its descendants (a tool may be a launcher with the server as its child). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

const CLOCK_TICKS_PER_SECOND = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU milliseconds (user + system, every thread) of `pids` and their descendants so far. */
export function cpuMsOf(pids: number[]): number {
  let ticks = 0;
  for (const p of pids.flatMap(processTree)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Runs `cmd` under GNU time: wall, CPU (user + sys) and peak RSS of the child; its stdout. */
export function timedChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, servers: number[] = []): Promise<ChildCost & { out: string }> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const serversBefore = cpuMsOf(servers);
    const child = spawn("/usr/bin/time", ["-f", "VRBBENCH %M %U %S", cmd, ...args], { env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - t;
      const m = /VRBBENCH (\d+) ([\d.]+) ([\d.]+)/.exec(err);
      if (code !== 0 || !m) return reject(new Error(`${cmd} ${args[0] ?? ""} exited ${code}: ${err.slice(-600)}`));
      resolve({ ms, cpuMs: (Number(m[2]) + Number(m[3])) * 1000, kernelCpuMs: Number(m[3]) * 1000, maxRssKiB: Number(m[1]), serversCpuMs: cpuMsOf(servers) - serversBefore, out });
    });
  });
}

/** (a) the snapshot stream alone, read to nothing. */
export async function streamToNothing(env: LocalEnvironment): Promise<{ ms: number; cpuMs: number; bytes: number }> {
  const client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
  const cpu = process.cpuUsage();
  const t = performance.now();
  try {
    let bytes = 0;
    await pipeline(await openSnapshotStream(client), new Writable({ write: (c: Buffer, _e, cb) => ((bytes += c.length), cb()) }));
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - t, cpuMs: (used.user + used.system) / 1000, bytes };
  } finally {
    await client.close();
  }
}

/**
 * The work no backup can skip, in CPU ms: SHA-256 of the file, gunzip, SHA-256 of what it inflates
 * to (irreducible-work.ts, in a Node of its own started with vrb's heap settings).
 */
export async function irreducibleCpuMs(file: string): Promise<number> {
  const work = fileURLToPath(new URL("./irreducible-work.js", import.meta.url));
  const { out } = await timedChild(process.execPath, [...BOUNDED_HEAP_FLAGS, work, file], process.env);
  return (JSON.parse(out) as { cpuMs: number }).cpuMs;
}

/** What a CLI run pays before its first request (issue 22): medians, wall and CPU milliseconds. */
export interface StartupFigures {
  runs: number;
  /** `vrb --version`, `vrb --help`, `vrb list --help`, and `node -e 0` (the interpreter's own start, the floor of any CLI in Node). */
  version: { ms: number; cpuMs: number };
  help: { ms: number; cpuMs: number };
  listHelp: { ms: number; cpuMs: number };
  node: { ms: number; cpuMs: number };
  /** `vrb backup` from its spawn to its first TCP connection (wall only: the child is killed there). */
  backupFirstRequestMs: number;
}

/**
 * Wall milliseconds from spawning `vrb backup` to its first connection at a server that accepts and
 * never answers, standing for Vault and S3 both: whichever the backup asks first.
 */
async function backupFirstRequestMs(vrb: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env = {
    ...process.env,
    VAULT_ADDR: url,
    VAULT_TOKEN: "bench-startup",
    AWS_ENDPOINT_URL_S3: url,
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench-startup",
    AWS_REGION: "us-east-1",
    VRB_BUCKET: "bench-startup",
    VRB_CLUSTER: "bench-startup",
  };
  const t = performance.now();
  const child = spawn(vrb, ["backup"], { env, stdio: "ignore" });
  try {
    return await new Promise<number>((resolve, reject) => {
      server.once("connection", (socket) => {
        resolve(performance.now() - t);
        socket.destroy();
      });
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`vrb backup exited ${code} before its first request`)));
    });
  } finally {
    child.kill("SIGKILL");
    server.close();
  }
}

/**
 * The start-up commands `runs` times each, interleaved so a burst of load hits all of them. `vrb`
 * is the executable as a user starts it (the npm bin), not `node vrb.js`.
 */
export async function measureStartup(vrb: string, runs = 10): Promise<StartupFigures> {
  const runsOf = { version: [vrb, "--version"], help: [vrb, "--help"], listHelp: [vrb, "list", "--help"], node: [process.execPath, "-e", "0"] };
  const costs: Record<string, { ms: number; cpuMs: number }[]> = {};
  const first: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [name, [cmd, ...args]] of Object.entries(runsOf)) {
      const c = await timedChild(cmd!, args, process.env);
      (costs[name] ??= []).push({ ms: c.ms, cpuMs: c.cpuMs });
    }
    first.push(await backupFirstRequestMs(vrb));
  }
  const med = (name: string) => ({ ms: median(costs[name]!.map((c) => c.ms)), cpuMs: median(costs[name]!.map((c) => c.cpuMs)) });
  return { runs, version: med("version"), help: med("help"), listHelp: med("listHelp"), node: med("node"), backupFirstRequestMs: median(first) };
}
