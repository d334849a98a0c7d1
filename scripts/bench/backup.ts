// `npm run bench -- backup [--size 256MiB] [--s3 seaweedfs|moto]`: on a throwaway local environment,
// fills the cluster to half the size and then to the full size, and at each size measures
//   (a) reading the snapshot stream to nothing,
//   (b) `vrb backup` (the real CLI in a child process: wall time including Node start-up, and the
//       report's own transfer time; peak RSS of that child, the process doing the work, by GNU time),
//   (c) the two-step runbook: `bao operator raft snapshot save FILE`, then upload of FILE with the
//       same uploader, S3 client settings, part size and queue size as (b), so only the one pass differs,
//   (d) `vrb backup` as (b), with S3 behind a fault proxy answering 10 % of part uploads 503 SlowDown
//       and 2 % 500 InternalError (the retries' cost).
// Prints figures; never fails on a slow machine.
import { spawn, spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  environmentExports,
  fillWithRandomData,
  formatBytes,
  localDown,
  localS3Client,
  localUp,
  MultipartSink,
  openSnapshotStream,
  packageRoot,
  s3ServerKindFromEnv,
  toolPath,
  VaultClient,
  type LocalEnvironment,
} from "../../engine/index.js";
import { FaultProxy, partUploads } from "./fault-proxy.js";

const MiB = 1024 * 1024;

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?$/i.exec(text.trim());
  if (!m) throw new Error(`--size '${text}' is not a size; use e.g. 256MiB or 1GiB`);
  const unit = (m[2] ?? "MiB").toUpperCase().replace("I", "").replace(/B$/, "");
  const mult: Record<string, number> = { "": 1, K: 1024, M: MiB, G: 1024 * MiB };
  return Math.round(Number(m[1]) * mult[unit]!);
}

function envVars(env: LocalEnvironment): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of environmentExports(env).split("\n")) {
    const m = /^export ([A-Z0-9_]+)='(.*)'$/.exec(line);
    if (m) vars[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
  return vars;
}

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

/** (a) the snapshot stream alone, read to nothing. */
async function streamToNothing(env: LocalEnvironment): Promise<number> {
  const client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
  try {
    let bytes = 0;
    await pipeline(await openSnapshotStream(client), new Writable({ write: (c: Buffer, _e, cb) => ((bytes += c.length), cb()) }));
    return bytes;
  } finally {
    await client.close();
  }
}

/** (b) `vrb backup --json` as a user runs it; GNU time reports the child's peak RSS. */
function vrbBackup(env: LocalEnvironment, cluster: string, s3Endpoint?: string): Promise<{ bytes: number; transferMs: number; maxRssKiB: number }> {
  const bin = join(packageRoot(), "dist", "scripts", "vrb.js");
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-f", "MAXRSS_KIB=%M", process.execPath, bin, "backup", "--json", "--cluster", cluster, "--prefix", "bench/"], {
      env: { ...process.env, ...envVars(env), ...(s3Endpoint ? { AWS_ENDPOINT_URL_S3: s3Endpoint } : {}) },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      const rss = /MAXRSS_KIB=(\d+)/.exec(err);
      if (code !== 0 || !rss) return reject(new Error(`vrb backup exited ${code}: ${err.slice(-500)}`));
      const report = JSON.parse(out) as { bytes: number; durationsMs: { transfer?: number } };
      resolve({ bytes: report.bytes, transferMs: report.durationsMs.transfer ?? NaN, maxRssKiB: Number(rss[1]) });
    });
  });
}

/** (c) the runbook: save to disk with the bao CLI, then upload the file. */
async function saveThenUpload(env: LocalEnvironment, dir: string, cluster: string): Promise<{ saveMs: number; uploadMs: number; bytes: number }> {
  const file = join(dir, `${cluster}.snap`);
  const save = await timed(async () => {
    const r = spawnSync(toolPath("bao"), ["operator", "raft", "snapshot", "save", file], {
      env: { ...process.env, BAO_ADDR: env.nodes[0]!.apiAddr, BAO_TOKEN: env.keys!.rootToken },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`bao operator raft snapshot save failed: ${r.stderr}`);
  });
  const bytes = statSync(file).size;
  const s3 = localS3Client(env.s3!);
  try {
    const sink = new MultipartSink({
      s3,
      Bucket: env.bucket!,
      Key: `bench/runbook/${cluster}.snap`,
      ContentType: "application/gzip",
      partSize: DEFAULT_PART_SIZE,
      queueSize: DEFAULT_QUEUE_SIZE,
    });
    const upload = await timed(() => pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), sink));
    return { saveMs: save.ms, uploadMs: upload.ms, bytes };
  } finally {
    s3.destroy();
    rmSync(file, { force: true });
  }
}

export async function main(args: string[]): Promise<void> {
  let size = 256 * MiB;
  let kind = s3ServerKindFromEnv();
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--size") size = parseSize(args[++i] ?? "");
    else if (args[i] === "--s3") kind = s3ServerKindFromEnv({ VRB_S3_SERVER: args[++i] });
    else throw new Error(`unknown option ${args[i]}; use --size 256MiB|1GiB, --s3 seaweedfs|moto`);
  }
  if (!existsSync("/usr/bin/time")) throw new Error("/usr/bin/time (GNU time) is needed to measure the peak RSS of vrb backup");
  const dir = mkdtempSync(join(tmpdir(), "vrb-bench-backup-"));
  const log = (m: string) => process.stderr.write(`bench backup: ${m}\n`);
  log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${formatBytes(totalmem())} RAM, node ${process.version}; S3 server ${kind}`);
  const env = await localUp({ dir: join(dir, "env"), nodes: 1, s3: kind });
  const rows: string[][] = [];
  const proxy = await new FaultProxy(env.s3!.endpoint).start();
  try {
    const client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
    let filled = 0;
    for (const [i, target] of [Math.round(size / 2), size].entries()) {
      log(`filling the cluster to ${formatBytes(target)} of random KV data`);
      await fillWithRandomData(client, { bytes: target - filled, mount: `bench${i}` });
      filled = target;
      const a = await timed(() => streamToNothing(env));
      const b = await timed(() => vrbBackup(env, `bench-${i}`));
      const c = await saveThenUpload(env, dir, `bench-${i}`);
      proxy.rules = [
        { match: partUploads, share: 0.1, fault: { kind: "s3-error", status: 503, code: "SlowDown" } },
        { match: partUploads, share: 0.02 / 0.9, fault: { kind: "s3-error", status: 500, code: "InternalError" } },
      ];
      const injectedBefore = Object.values(proxy.stats.injected).reduce((a, b) => a + b, 0);
      const d = await timed(() => vrbBackup(env, `bench-flaky-${i}`, proxy.url));
      const injected = Object.values(proxy.stats.injected).reduce((a, b) => a + b, 0) - injectedBefore;
      proxy.rules = [];
      const cMs = c.saveMs + c.uploadMs;
      const row = [
        formatBytes(target),
        formatBytes(a.value),
        `${(a.ms / 1000).toFixed(2)}s`,
        `${(b.ms / 1000).toFixed(2)}s (${(b.value.transferMs / 1000).toFixed(2)})`,
        `${(cMs / 1000).toFixed(2)}s (${(c.saveMs / 1000).toFixed(2)} + ${(c.uploadMs / 1000).toFixed(2)})`,
        `${(b.ms / a.ms).toFixed(2)} (${(b.value.transferMs / a.ms).toFixed(2)})`,
        (b.ms / cMs).toFixed(2),
        formatBytes(b.value.maxRssKiB * 1024),
        `${(d.ms / 1000).toFixed(2)}s (${injected} errors), ${formatBytes(d.value.maxRssKiB * 1024)}`,
      ];
      rows.push(row);
      log(`size ${row[0]}: done`);
    }
    await client.close();
  } finally {
    await proxy.stop();
    await localDown(env.dir);
    rmSync(dir, { recursive: true, force: true });
  }
  const head = [
    "data",
    "snapshot",
    "(a) stream",
    "(b) vrb backup (transfer)",
    "(c) save + upload",
    "b/a (transfer/a)",
    "b/c",
    "peak RSS (b)",
    "(d) b, S3 10 % 503 + 2 % 500: time, RSS",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  process.stdout.write([fmt(head), ...rows.map(fmt)].join("\n") + "\n");
  process.stdout.write(
    "(b) is the wall time of the CLI, start-up and preflight included; (transfer) is its one streamed pass alone.\n" +
      "targets: b/a <= 1.15, b/c < 1, peak RSS <= 160 MiB and flat in size, also under S3 errors (d) (docs/benchmarks.md)\n",
  );
}
