// (r) where a backup's main-thread CPU goes: one `vrb backup` under `node --cpu-prof`, its samples
// grouped by what the code does. It answers the per-GiB target's second half: what remains above
// the irreducible work (SHA-256, gunzip) and whether it can go.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BOUNDED_HEAP_FLAGS } from "../../../engine/bounded-heap.js";
import { packageRoot } from "../../../engine/package-info.js";
import { timedChild } from "./measure.js";

/** What the samples of one category add up to. */
export interface ProfileShare {
  category: string;
  ms: number;
}

export interface ProfileFigures {
  snapshotBytes: number;
  /** Sampled main-thread time spent running (not idle), and idle. */
  busyMs: number;
  idleMs: number;
  /** Largest first. */
  shares: ProfileShare[];
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
}

const SOCKET_NATIVES = new Set(["writev", "writeBuffer", "writeLatin1String", "writeUtf8String", "writeAsciiString"]);
const LOADER_NATIVES = new Set(["compileFunction", "internalModuleStat", "readFileUtf8"]);
const HTTP_CODE = /\/node_modules\/(undici|@aws-sdk|@smithy)\/|^node:_http|^node:internal\/deps\/undici|^wasm:\/\//;

/** Self-time categories, first match wins: the irreducible work first, then what the pass adds. */
const CATEGORIES: [string, (fn: string, url: string) => boolean][] = [
  ["idle", (fn) => fn === "(idle)"],
  ["SHA-256 (the snapshot's and the archive entries')", (_fn, url) => url.startsWith("node:internal/crypto/hash")],
  ["CRC32 of each part", (fn, url) => url === "node:zlib" && fn === "crc32"],
  ["gunzip, its main-thread part (the inflate runs on the libuv pool)", (_fn, url) => url === "node:zlib"],
  ["garbage collection", (fn) => fn === "(garbage collector)"],
  ["copies into the part buffers", (fn, url) => url === "node:buffer" && /copy/i.test(fn)],
  ["socket reads and writes", (fn, url) => url === "node:net" || url === "node:internal/stream_base_commons" || (url === "" && SOCKET_NATIVES.has(fn))],
  [
    "start-up: loading and compiling modules",
    (fn, url) => url.startsWith("node:internal/modules") || url.startsWith("node:internal/bootstrap") || fn === "wrapSafe" || (url === "" && LOADER_NATIVES.has(fn)),
  ],
  ["HTTP: undici (Vault), the AWS SDK and node:http (S3)", (_fn, url) => HTTP_CODE.test(url)],
  ["Node's streams, events and other internals", (_fn, url) => url.startsWith("node:")],
  ["other libraries in node_modules", (_fn, url) => url.includes("/node_modules/")],
  ["vrb's own code and what it bundles (dist/)", (_fn, url) => url.includes("/dist/")],
  ["V8 and native code not attributed to a function", (fn) => fn === "(program)"],
];

function categoryOf(fn: string, url: string): string {
  return CATEGORIES.find(([, test]) => test(fn, url))?.[0] ?? "other";
}

/** Groups a .cpuprofile's self time by category (a sample's time is the delta to the next one). */
export function profileShares(profile: CpuProfile): { busyMs: number; idleMs: number; shares: ProfileShare[] } {
  const category = new Map(profile.nodes.map((n) => [n.id, categoryOf(n.callFrame.functionName, n.callFrame.url)]));
  const ms = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const c = category.get(profile.samples[i]!) ?? "other";
    ms.set(c, (ms.get(c) ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000);
  }
  const idleMs = ms.get("idle") ?? 0;
  ms.delete("idle");
  const shares = [...ms].map(([c, m]) => ({ category: c, ms: m })).sort((a, b) => b.ms - a.ms);
  return { busyMs: shares.reduce((s, x) => s + x.ms, 0), idleMs, shares };
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** The (r) lines of the report: each category's share of the main thread's busy time. */
export function formatProfile(p: ProfileFigures): string {
  const rows = p.shares.filter((s) => s.ms >= 1).map((s) => `  ${s.ms.toFixed(0).padStart(6)} ms  ${((100 * s.ms) / p.busyMs).toFixed(1).padStart(5)} %  ${s.category}`);
  return [
    `(r) one vrb backup of ${mib(p.snapshotBytes)} under node --cpu-prof: the main thread ran ${(p.busyMs / 1000).toFixed(2)} s and waited ${(p.idleMs / 1000).toFixed(2)} s (for OpenBao and S3); its running time by self time:`,
    ...rows,
    "(r): the libuv pool's inflate and the kernel's socket work are not in a main-thread profile; GNU time's CPU-s above count them.",
    "",
  ].join("\n");
}

/**
 * `vrb <args>` (a backup with --json) under `node --cpu-prof`, with vrb's heap settings on the
 * command line (so it runs in that one Node, as the executable does).
 */
export async function profileBackup(args: string[], env: NodeJS.ProcessEnv, servers: number[]): Promise<ProfileFigures> {
  const dir = mkdtempSync(join(tmpdir(), "vrb-bench-profile-"));
  try {
    const vrb = join(packageRoot(), "dist", "scripts", "vrb.js");
    const r = await timedChild(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...BOUNDED_HEAP_FLAGS, vrb, ...args], env, servers);
    const report = JSON.parse(r.out) as { bytes: number };
    // One Node ran the backup; should a child have written a profile too, the largest is the backup's.
    const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
    const largest = files.sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
    if (!largest) throw new Error(`node --cpu-prof wrote no profile in ${dir}`);
    const profile = JSON.parse(readFileSync(join(dir, largest), "utf8")) as CpuProfile;
    return { snapshotBytes: report.bytes, ...profileShares(profile) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
