// `npm run bench -- backup [--size 256MiB] [--s3 seaweedfs|moto] [--repeat N] [--json] [--no-wan] [--no-encrypted] [--no-copy] [--faults]`
// On a throwaway 1-node local environment, fills the cluster to half the size and then to the full
// size, and at each size measures, on the same data in the same run:
//   (a) reading the snapshot stream to nothing (in the bench process),
//   (b) `vrb backup` (the real CLI in a child: wall time including Node start-up; the report's own
//       transfer time; CPU seconds and peak RSS of that child, by GNU time),
//   (c) the runbook: `bao operator raft snapshot save FILE`, then the real `aws s3 cp FILE` (AWS CLI
//       from the tools venv, its defaults), (u) being that `aws s3 cp` alone,
//   the irreducible work on FILE: SHA-256 of the file + gunzip + SHA-256 of the archive's bytes,
//   in CPU seconds (every backup must do at least that),
//   and the same (b), (c), (u) with S3 behind a 20 ms-each-way link (the WAN profile),
//   (e) `vrb backup` with the snapshot encrypted to an age recipient (its wall, CPU and peak RSS),
//   (f) "one copy": `vrb backup` to S3 with an off-site copy on Azurite (one read from Vault, two
//       writes), against `vrb backup` to Azurite alone and to S3 alone (the slower of the two is the yardstick),
//   and the servers' own CPU seconds during each, which tells whether they were the limit.
// CPU layout: the servers (OpenBao, the S3 server, the WAN relay) are pinned to core 0 and the
// bench with every client it starts to core 1 (taskset), so the client's own cost shows.
// `--faults` adds (d): `vrb backup` with S3 behind a proxy refusing 10 % of part uploads with
// 503 SlowDown and 2 % with 500 InternalError. Prints figures; never fails on a slow machine.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BlobServiceClient } from "@azure/storage-blob";
import { createGunzip } from "node:zlib";
import {
  environmentExports,
  fillWithRandomData,
  formatBytes,
  localDown,
  localUp,
  openSnapshotStream,
  packageRoot,
  s3ServerKindFromEnv,
  toolPath,
  VaultClient,
  type LocalEnvironment,
} from "../../engine/index.js";
import { startAzurite, stopAzurite, type LocalAzurite } from "../../engine/local/azurite.js";
import { FaultProxy, partUploads } from "./fault-proxy.js";
import { parseSize } from "./size.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const WAN_DELAY_MS = 20;
const SERVER_CPU = "0";
const CLIENT_CPU = "1";

/** What one child process cost: wall and CPU milliseconds, peak RSS; the servers' CPU meanwhile. */
interface ChildCost {
  ms: number;
  cpuMs: number;
  maxRssKiB: number;
  /** CPU milliseconds the servers (OpenBao, the S3 server, the WAN relay) used while it ran. */
  serversCpuMs: number;
}

interface PeerFigures {
  /** (b) vrb backup, and its own transfer time from the report. */
  b: ChildCost & { transferMs: number; bytes: number };
  /** (c) save + upload = save.ms + u.ms. */
  save: ChildCost;
  u: ChildCost;
  cMs: number;
  bOverC: number;
  /** max(a, u) / b: 1.0 is a perfect pipeline. */
  overlap: number;
  /**
   * The servers' CPU during (b) over (b)'s wall time. Pinned to one CPU, 1.0 means that CPU was
   * busy all along: (b) cannot be faster than the servers' own work, whatever the client does.
   */
  serversBusyInB: number;
  /** The servers' CPU during (b) over (c)'s wall time: the lowest b/c the servers' CPU allows. */
  bOverCFloor: number;
}

interface SizeFigures {
  dataBytes: number;
  snapshotBytes: number;
  a: { ms: number; cpuMs: number };
  local: PeerFigures;
  wan?: PeerFigures;
  /** CPU milliseconds of SHA-256(file) + gunzip + SHA-256(archive bytes), in the bench process. */
  irreducibleCpuMs: number;
  cpuSecondsPerGiB: { backup: number; backupLessStartup: number; irreducible: number; stream: number; runbook: number };
  cpuRatio: number;
  cpuRatioLessStartup: number;
  faults?: { ms: number; errors: number; maxRssKiB: number };
  /** (e) `vrb backup` with an age recipient: the ciphertext is what is stored. */
  encrypted?: ChildCost & { bytes: number };
  /** (f) S3 + an Azurite copy in one pass, against each store alone; ratio = withCopy / the slower alone (target <= 1.15). */
  copy?: { s3AloneMs: number; azureAloneMs: number; withCopyMs: number; ratio: number; maxRssKiB: number };
}

function envVars(env: LocalEnvironment): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of environmentExports(env).split("\n")) {
    const m = /^export ([A-Z0-9_]+)='(.*)'$/.exec(line);
    if (m) vars[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
  return vars;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A process and all its descendants (a tool may be a launcher with the server as its child). */
function processTree(pid: number): number[] {
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
function cpuMsOf(pids: number[]): number {
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

/** Pins every thread of `pid` (and of its descendants) to `cpu`; false when taskset refused. */
function pin(pid: number, cpu: string): boolean {
  return processTree(pid).every((p) => spawnSync("taskset", ["-a", "-p", "-c", cpu, String(p)], { stdio: "ignore" }).status === 0);
}

/** Why the bench cannot pin, or undefined when it can. */
function pinningUnavailable(): string | undefined {
  if (cpus().length < 2) return `only ${cpus().length} CPU`;
  const r = spawnSync("taskset", ["-p", String(process.pid)], { encoding: "utf8" });
  if (r.error) return "taskset is not installed (util-linux)";
  return r.status === 0 ? undefined : `taskset failed: ${r.stderr.trim()}`;
}

/** Why netem cannot be used here (tried in a throwaway network namespace), or undefined. */
function netemUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (netem needs CAP_NET_ADMIN)";
  const ns = `vrbbench${process.pid}`;
  const add = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
  if (add.error) return "ip (iproute2) is not installed";
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  try {
    const r = spawnSync("ip", ["netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", `${WAN_DELAY_MS}ms`], { encoding: "utf8" });
    if (r.error) return "tc (iproute2) is not installed";
    return r.status === 0 ? undefined : `tc netem failed: ${r.stderr.trim()} (the kernel has no sch_netem)`;
  } finally {
    spawnSync("ip", ["netns", "del", ns]);
  }
}

/** Runs `cmd` under GNU time: wall, CPU (user + sys) and peak RSS of the child; its stdout. */
function timedChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, servers: number[] = []): Promise<ChildCost & { out: string }> {
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
      resolve({ ms, cpuMs: (Number(m[2]) + Number(m[3])) * 1000, maxRssKiB: Number(m[1]), serversCpuMs: cpuMsOf(servers) - serversBefore, out });
    });
  });
}

/** (a) the snapshot stream alone, read to nothing. */
async function streamToNothing(env: LocalEnvironment): Promise<{ ms: number; cpuMs: number; bytes: number }> {
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

/** The work no backup can skip, in CPU ms: SHA-256 of the file, gunzip, SHA-256 of what it inflates to. */
async function irreducibleCpuMs(file: string): Promise<number> {
  const outer = createHash("sha256");
  const inner = createHash("sha256");
  const cpu = process.cpuUsage();
  await pipeline(
    createReadStream(file, { highWaterMark: MiB }),
    new Transform({ transform: (c: Buffer, _e, cb) => (outer.update(c), cb(null, c)) }),
    createGunzip({ chunkSize: 256 * 1024 }),
    new Writable({ write: (c: Buffer, _e, cb) => (inner.update(c), cb()) }),
  );
  outer.digest();
  inner.digest();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1000;
}

/** The WAN profile's link: the delay relay (scripts/bench/delay-proxy.ts) in its own process. */
async function startDelayRelay(target: string, pinned: boolean): Promise<{ url: string; pid: number; stop: () => void }> {
  const u = new URL(target);
  const child = spawn(process.execPath, [join(packageRoot(), "dist", "scripts", "bench", "delay-proxy.js"), `${u.hostname}:${u.port}`, String(WAN_DELAY_MS)], {
    // Its stdin is a pipe from us: it exits when the bench does, even if the bench is killed.
    stdio: ["pipe", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the delay relay exited ${code}`)));
  });
  if (pinned) pin(child.pid!, SERVER_CPU);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill() };
}

class Bench {
  readonly vars: Record<string, string>;
  /** The server processes whose CPU is counted (OpenBao, the S3 server, then the WAN relay). */
  readonly servers: number[];
  constructor(
    readonly env: LocalEnvironment,
    readonly dir: string,
  ) {
    this.vars = envVars(env);
    this.servers = [...env.nodes.map((n) => n.pid), env.s3?.pid].filter((p): p is number => p !== undefined);
  }

  /** (b) `vrb backup --json` as a user runs it; `extra` adds flags (e.g. a policy file). */
  async backup(
    cluster: string,
    s3Endpoint = this.env.s3!.endpoint,
    extra: string[] = [],
    extraEnv: Record<string, string> = {},
  ): Promise<ChildCost & { transferMs: number; bytes: number }> {
    const bin = join(packageRoot(), "dist", "scripts", "vrb.js");
    const r = await timedChild(
      process.execPath,
      [bin, "backup", "--json", "--cluster", cluster, "--prefix", "bench/", ...extra],
      { ...process.env, ...this.vars, AWS_ENDPOINT_URL_S3: s3Endpoint, ...extraEnv },
      this.servers,
    );
    const report = JSON.parse(r.out) as { bytes: number; durationsMs: { transfer?: number } };
    const { out: _report, ...cost } = r;
    return { ...cost, transferMs: report.durationsMs.transfer ?? NaN, bytes: report.bytes };
  }

  /** (e) the same backup with the snapshot encrypted to a fresh age recipient. */
  async encryptedBackup(cluster: string): Promise<ChildCost & { bytes: number }> {
    const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
    const policyFile = join(this.dir, `${cluster}.policy.yaml`);
    writeFileSync(policyFile, JSON.stringify({ encryption: { age: [await identityToRecipient(await generateX25519Identity())] } }));
    return this.backup(cluster, undefined, ["--policy", policyFile]);
  }

  /** (f) S3 with a copy on Azurite, and Azurite alone (S3 alone is (b)). */
  async withCopy(cluster: string, az: LocalAzurite, container: string, s3AloneMs: number): Promise<NonNullable<SizeFigures["copy"]>> {
    const azure = { type: "azure", accountName: az.accountName, container, endpoint: az.endpoint };
    const alone = join(this.dir, `${cluster}.azure.policy.yaml`);
    writeFileSync(alone, JSON.stringify({ destination: azure }));
    const both = join(this.dir, `${cluster}.copy.policy.yaml`);
    writeFileSync(both, JSON.stringify({ copies: [{ name: "offsite", ...azure }], onCopyFailure: "fail" }));
    const azEnv = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
    const a = await this.backup(`${cluster}-azure`, undefined, ["--policy", alone], azEnv);
    const c = await this.backup(`${cluster}-copy`, undefined, ["--policy", both], azEnv);
    return { s3AloneMs: s3AloneMs, azureAloneMs: a.ms, withCopyMs: c.ms, ratio: c.ms / Math.max(s3AloneMs, a.ms), maxRssKiB: c.maxRssKiB };
  }

  /** The runbook's first step: `bao operator raft snapshot save FILE`. */
  save(file: string): Promise<ChildCost> {
    return timedChild(
      toolPath("bao"),
      ["operator", "raft", "snapshot", "save", file],
      { ...process.env, BAO_ADDR: this.env.nodes[0]!.apiAddr, BAO_TOKEN: this.env.keys!.rootToken },
      this.servers,
    );
  }

  /** (u) the runbook's second step: the real `aws s3 cp FILE s3://...` with the CLI's defaults. */
  upload(file: string, key: string, s3Endpoint = this.env.s3!.endpoint): Promise<ChildCost> {
    // The AWS CLI is in the tools venv beside bao (scripts/tools.requirements.txt).
    return timedChild(
      join(dirname(toolPath("bao")), "aws"),
      ["s3", "cp", "--only-show-errors", "--endpoint-url", s3Endpoint, file, `s3://${this.env.bucket!}/${key}`],
      { ...process.env, ...this.vars, AWS_ENDPOINT_URL_S3: s3Endpoint },
      this.servers,
    );
  }

  async peers(file: string, cluster: string, aMs: number, s3Endpoint?: string): Promise<PeerFigures> {
    const b = await this.backup(cluster, s3Endpoint);
    const save = await this.save(file);
    const u = await this.upload(file, `bench/runbook/${cluster}.snap`, s3Endpoint);
    rmSync(file, { force: true });
    const cMs = save.ms + u.ms;
    return {
      b,
      save,
      u,
      cMs,
      bOverC: b.ms / cMs,
      overlap: Math.max(aMs, u.ms) / b.ms,
      serversBusyInB: b.serversCpuMs / b.ms,
      bOverCFloor: b.serversCpuMs / cMs,
    };
  }
}

function parseArgs(args: string[]) {
  const o = { size: 256 * MiB, kind: s3ServerKindFromEnv(), repeat: 1, json: false, wan: true, faults: false, encrypted: true, copy: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--size") o.size = parseSize(args[++i] ?? "");
    else if (a === "--s3") o.kind = s3ServerKindFromEnv({ VRB_S3_SERVER: args[++i] });
    else if (a === "--repeat") o.repeat = Math.max(1, Number(args[++i]) || 1);
    else if (a === "--json") o.json = true;
    else if (a === "--no-wan") o.wan = false;
    else if (a === "--faults") o.faults = true;
    else if (a === "--no-encrypted") o.encrypted = false;
    else if (a === "--no-copy") o.copy = false;
    else throw new Error(`unknown option ${a}; use --size 256MiB|1GiB, --s3 seaweedfs|moto, --repeat N, --json, --no-wan, --no-encrypted, --no-copy, --faults`);
  }
  return o;
}

/** Medians over repeated runs of one size, figure by figure. */
function medianFigures(runs: SizeFigures[]): SizeFigures {
  const walk = (xs: unknown[]): unknown => {
    const first = xs[0];
    if (typeof first === "number") return median(xs as number[]);
    if (first && typeof first === "object") {
      return Object.fromEntries(Object.keys(first).map((k) => [k, walk(xs.map((x) => (x as Record<string, unknown>)[k]))]));
    }
    return first;
  };
  return walk(runs) as SizeFigures;
}

export async function main(args: string[]): Promise<void> {
  const o = parseArgs(args);
  if (!existsSync("/usr/bin/time")) throw new Error("/usr/bin/time (GNU time) is needed to measure the CPU and peak RSS of each client");
  const log = (m: string) => process.stderr.write(`bench backup: ${m}\n`);
  const noPin = pinningUnavailable();
  const noNetem = o.wan ? netemUnavailable() : "--no-wan";
  const load = loadavg().map((l) => l.toFixed(2));
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${formatBytes(totalmem())} RAM, node ${process.version}, load average ${load.join(" ")} at start`;
  log(`machine: ${machine}; S3 server ${o.kind}`);
  log(noPin ? `CPU layout: unpinned (${noPin})` : `CPU layout: servers on CPU ${SERVER_CPU}, the bench and every client on CPU ${CLIENT_CPU}`);
  if (o.wan) {
    log(
      noNetem
        ? `WAN profile: netem unavailable (${noNetem}); S3 reached through the user-space delay relay instead, ${WAN_DELAY_MS} ms each way`
        : `WAN profile: S3 through the user-space delay relay, ${WAN_DELAY_MS} ms each way (netem is available here too)`,
    );
  }
  if (!noPin) pin(process.pid, CLIENT_CPU);
  const dir = mkdtempSync(join(tmpdir(), "vrb-bench-backup-"));
  const env = await localUp({ dir: join(dir, "env"), nodes: 1, s3: o.kind });
  if (!noPin) {
    for (const pid of [...env.nodes.map((n) => n.pid), env.s3?.pid]) if (pid) pin(pid, SERVER_CPU);
  }
  const bench = new Bench(env, dir);
  const results: SizeFigures[] = [];
  const proxy = o.faults ? await new FaultProxy(env.s3!.endpoint).start() : undefined;
  const relay = o.wan ? await startDelayRelay(env.s3!.endpoint, !noPin) : undefined;
  if (relay) bench.servers.push(relay.pid);
  const az = o.copy ? await startAzurite(join(dir, "azurite")) : undefined;
  const container = "vrb-bench";
  if (az) {
    await BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(container).create();
    if (az.pid) {
      bench.servers.push(az.pid);
      if (!noPin) pin(az.pid, SERVER_CPU);
    }
  }
  const startup = await timedChild(process.execPath, [join(packageRoot(), "dist", "scripts", "vrb.js"), "--version"], process.env);
  try {
    const client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
    let filled = 0;
    for (const [i, target] of [Math.round(o.size / 2), o.size].entries()) {
      log(`filling the cluster to ${formatBytes(target)} of random KV data`);
      await fillWithRandomData(client, { bytes: target - filled, mount: `bench${i}` });
      filled = target;
      const runs: SizeFigures[] = [];
      for (let r = 0; r < o.repeat; r++) {
        const name = `bench-${i}-${r}`;
        const file = join(dir, `${name}.snap`);
        const a = await streamToNothing(env);
        // The irreducible work is measured on the runbook's file, saved once more for it.
        await bench.save(file);
        const irreducible = await irreducibleCpuMs(file);
        const local = await bench.peers(file, name, a.ms);
        const wan = relay ? await bench.peers(file, `${name}-wan`, a.ms, relay.url) : undefined;
        const encrypted = o.encrypted ? await bench.encryptedBackup(`${name}-age`) : undefined;
        const copy = az ? await bench.withCopy(name, az, container, local.b.ms) : undefined;
        let faults: SizeFigures["faults"];
        if (proxy) {
          proxy.rules = [
            { match: partUploads, share: 0.1, fault: { kind: "s3-error", status: 503, code: "SlowDown" } },
            { match: partUploads, share: 0.02 / 0.9, fault: { kind: "s3-error", status: 500, code: "InternalError" } },
          ];
          const before = Object.values(proxy.stats.injected).reduce((x, y) => x + y, 0);
          const d = await bench.backup(`${name}-flaky`, proxy.url);
          faults = { ms: d.ms, maxRssKiB: d.maxRssKiB, errors: Object.values(proxy.stats.injected).reduce((x, y) => x + y, 0) - before };
          proxy.rules = [];
        }
        const gib = local.b.bytes / GiB;
        const perGiB = {
          backup: local.b.cpuMs / 1000 / gib,
          backupLessStartup: (local.b.cpuMs - startup.cpuMs) / 1000 / gib,
          irreducible: irreducible / 1000 / gib,
          stream: a.cpuMs / 1000 / gib,
          runbook: (local.save.cpuMs + local.u.cpuMs) / 1000 / gib,
        };
        runs.push({
          dataBytes: target,
          snapshotBytes: a.bytes,
          a: { ms: a.ms, cpuMs: a.cpuMs },
          local,
          wan,
          irreducibleCpuMs: irreducible,
          cpuSecondsPerGiB: perGiB,
          cpuRatio: perGiB.backup / perGiB.irreducible,
          cpuRatioLessStartup: perGiB.backupLessStartup / perGiB.irreducible,
          faults,
          encrypted,
          copy,
        });
        log(`size ${formatBytes(target)}, run ${r + 1}/${o.repeat}: done (load average ${loadavg()[0]!.toFixed(2)})`);
      }
      results.push(medianFigures(runs));
      // Each size's figures as soon as they are known: a long run cut short still tells something.
      log(`figures at ${formatBytes(target)}: ${JSON.stringify(results.at(-1))}`);
    }
    await client.close();
  } finally {
    relay?.stop();
    await proxy?.stop();
    if (az) await stopAzurite(az);
    await localDown(env.dir);
    rmSync(dir, { recursive: true, force: true });
  }
  const context = {
    machine,
    s3Server: o.kind,
    cpuLayout: noPin ? `unpinned: ${noPin}` : `servers on CPU ${SERVER_CPU}, clients on CPU ${CLIENT_CPU}`,
    wan: o.wan
      ? noNetem
        ? `user-space delay relay, ${WAN_DELAY_MS} ms each way (netem unavailable: ${noNetem})`
        : `user-space delay relay, ${WAN_DELAY_MS} ms each way`
      : "skipped (--no-wan)",
    repeat: o.repeat,
    startupCpuMs: startup.cpuMs,
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
  };
  // With --json the figures go to stdout and the table to stderr, so one run gives both.
  const table = process[o.json ? "stderr" : "stdout"];
  table.write(formatTable(results, context.startupCpuMs));
  table.write(`${context.cpuLayout}; WAN: ${context.wan}; medians of ${o.repeat} run(s); load average at end ${context.loadAverageAtEnd.join(" ")}\n`);
  if (o.json) process.stdout.write(JSON.stringify({ ...context, sizes: results }, null, 2) + "\n");
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)}s`;

function formatTable(results: SizeFigures[], startupCpuMs: number): string {
  const head = [
    "snapshot",
    "(a) stream",
    "(b) vrb backup (transfer)",
    "(c) save + (u) aws s3 cp",
    "b/c",
    "overlap",
    "servers busy in b | b/c floor",
    "peak RSS (b)",
    "CPU s/GiB: b (less start-up) | irreducible | (a) | runbook",
    "CPU b/irr.",
  ];
  const rows: string[][] = [];
  for (const r of results) {
    const line = (label: string, p: PeerFigures) => [
      `${formatBytes(r.snapshotBytes)}${label}`,
      s(r.a.ms),
      `${s(p.b.ms)} (${(p.b.transferMs / 1000).toFixed(2)})`,
      `${s(p.cMs)} (${(p.save.ms / 1000).toFixed(2)} + ${(p.u.ms / 1000).toFixed(2)})`,
      p.bOverC.toFixed(2),
      p.overlap.toFixed(2),
      `${p.serversBusyInB.toFixed(2)} | ${p.bOverCFloor.toFixed(2)}`,
      formatBytes(p.b.maxRssKiB * 1024),
    ];
    const g = r.cpuSecondsPerGiB;
    rows.push([
      ...line("", r.local),
      `${g.backup.toFixed(2)} (${g.backupLessStartup.toFixed(2)}) | ${g.irreducible.toFixed(2)} | ${g.stream.toFixed(2)} | ${g.runbook.toFixed(2)}`,
      `${r.cpuRatio.toFixed(2)} (${r.cpuRatioLessStartup.toFixed(2)})`,
    ]);
    if (r.wan) rows.push([...line(" WAN", r.wan), "", ""]);
    const e = r.encrypted;
    if (e) {
      const perGiB = (e.cpuMs - startupCpuMs) / 1000 / (e.bytes / GiB);
      rows.push([`${formatBytes(r.snapshotBytes)} (e) age`, "", s(e.ms), "", "", "", "", formatBytes(e.maxRssKiB * 1024), `(${perGiB.toFixed(2)})`, ""]);
    }
    const c = r.copy;
    if (c) {
      const alone = `S3 alone ${s(c.s3AloneMs)}, Azurite alone ${s(c.azureAloneMs)}`;
      rows.push([`${formatBytes(r.snapshotBytes)} (f) copy`, "", `${s(c.withCopyMs)} (${alone})`, "", `${c.ratio.toFixed(2)}`, "", "", formatBytes(c.maxRssKiB * 1024), "", ""]);
    }
    if (r.faults)
      rows.push([`${formatBytes(r.snapshotBytes)} (d)`, "", `${s(r.faults.ms)}, ${r.faults.errors} S3 errors`, "", "", "", "", formatBytes(r.faults.maxRssKiB * 1024), "", ""]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return (
    [fmt(head), ...rows.map(fmt)].join("\n") +
    "\n" +
    `(b) is the CLI's wall time, Node start-up (${(startupCpuMs / 1000).toFixed(2)} CPU-s) and preflight included; (transfer) its one streamed pass alone.\n` +
    "overlap = max(a, u) / b (1.0: the pass is as fast as its slowest side). WAN: S3 behind 20 ms each way.\n" +
    "servers busy in b: the servers' CPU during (b) / (b)'s wall time (pinned: 1.00 = their CPU never idle); b/c floor: that CPU / (c), the lowest b/c they allow.\n" +
    "(f) copy: (b) to S3 with a copy on Azurite in the same pass; its b/c column is its wall time / the slower store alone (target <= 1.15).\n" +
    "(e) age: (b) with the snapshot encrypted to an age recipient (ciphertext stored). (a) in the CPU column: reading the stream alone.\n" +
    "targets: b/c <= 0.65, overlap >= 0.85 (WAN), CPU b/irreducible <= 1.3, peak RSS <= 160 MiB flat (docs/benchmarks.md)\n"
  );
}
