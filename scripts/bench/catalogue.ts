// `npm run bench -- catalogue [--snapshots 1000] [--clusters 1] [--repeat 3] [--vrb PATH] [--json]`: how long the
// commands that look snapshots up take when the store holds many (a year of hourly backups is
// 8,760), with S3 behind the WAN relay (20 ms each way, as `bench backup`): `vrb list`, `vrb
// status`, `vrb verify latest`, a `vrb backup` with the shrink guard (which looks up the previous
// good snapshot), `vrb prune --dry-run`, then once `vrb prune --keep-last 10` (a first prune). The
// snapshots are copies of one real backup under keys an hour apart, each with its own manifest.
// `--clusters N` puts as many snapshots under N - 1 further clusters and adds `vrb status
// --all-clusters` (what a fleet's exporter reads every refresh).
// `--vrb` runs another build's dist/scripts/vrb.js on the same store (an A/B).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CopyObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { environmentVariables, localDown, localUp } from "../../devenv/environment.js";
import { localS3Client } from "../../devenv/s3server.js";
import { mapLimit } from "../../engine/map-limit.js";
import { manifestKeyFor, snapshotKeyFor, type SnapshotManifest } from "../../engine/snapshot/manifest.js";
import { median, timedChild } from "./backup/measure.js";
import { vrbExecutable } from "./backup/scenarios.js";
import { describeWan, startDelayRelay } from "./backup/wan.js";

interface Options {
  snapshots: number;
  clusters: number;
  repeat: number;
  vrb: string;
  json: boolean;
}

function parseArgs(args: string[]): Options {
  const o: Options = { snapshots: 1000, clusters: 1, repeat: 3, vrb: vrbExecutable(), json: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const whole = (name: string) => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number >= 1`);
      return v;
    };
    if (a === "--snapshots") o.snapshots = whole(a);
    else if (a === "--clusters") o.clusters = whole(a);
    else if (a === "--repeat") o.repeat = whole(a);
    else if (a === "--vrb") o.vrb = args[++i] ?? "";
    else if (a === "--json") o.json = true;
    else throw new Error(`unknown option ${a}; use --snapshots N, --clusters N, --repeat N, --vrb PATH, --json`);
  }
  return o;
}

export async function main(args: string[]): Promise<void> {
  const o = parseArgs(args);
  const log = (m: string) => process.stderr.write(`bench catalogue: ${m}\n`);
  const dir = mkdtempSync(join(tmpdir(), "vrb-bench-catalogue-"));
  const env = await localUp({ dir: join(dir, "env"), nodes: 1 });
  const relay = await startDelayRelay(env.s3!.endpoint);
  const cluster = "catalogue";
  const prefix = "bench/";
  const vars = { ...process.env, ...environmentVariables(env), VRB_CLUSTER: cluster, VRB_PREFIX: prefix };
  const throughWan = { ...vars, AWS_ENDPOINT_URL_S3: relay.url };
  try {
    log(`WAN profile: ${describeWan("only the relay is used")}; ${o.snapshots} snapshots of each of ${o.clusters} cluster(s); vrb ${o.vrb}`);
    const first = JSON.parse((await timedChild(o.vrb, ["backup", "--json"], vars)).out) as { key: string };
    log(`copying ${first.key} to ${o.snapshots - 1} more keys, an hour apart, each with its manifest`);
    await fillCatalogue(env, first.key, cluster, prefix, o.snapshots);
    for (let c = 2; c <= o.clusters; c++) await fillCatalogue(env, first.key, `${cluster}-${c}`, prefix, o.snapshots, 0);
    const guard = join(dir, "guard.policy.yaml");
    writeFileSync(guard, JSON.stringify({ guard: { maxDropPercent: 50, action: "warn" } }));
    const commands: [string, string[]][] = [
      ["vrb list", ["list", "--json"]],
      ["vrb status", ["status", "--json"]],
      ...(o.clusters > 1 ? [[`vrb status --all-clusters (${o.clusters})`, ["status", "--all-clusters", "--json"]] as [string, string[]]] : []),
      ["vrb verify latest", ["verify", "latest", "--json"]],
      ["vrb backup (shrink guard)", ["backup", "--json", "--policy", guard]],
      ["vrb prune --dry-run", ["prune", "--json", "--keep-last", "10", "--dry-run"]],
    ];
    const figures: { command: string; ms: number[]; cpuMs: number[] }[] = [];
    for (const [name, argv] of commands) {
      const ms: number[] = [];
      const cpuMs: number[] = [];
      for (let r = 0; r < o.repeat; r++) {
        const run = await timedChild(o.vrb, argv, throughWan);
        ms.push(run.ms);
        cpuMs.push(run.cpuMs);
      }
      log(`${name}: ${ms.map((m) => (m / 1000).toFixed(2)).join(", ")} s`);
      figures.push({ command: name, ms, cpuMs });
    }
    // Once: it deletes all but the newest 10, as a first prune of a long history does.
    const prune = await timedChild(o.vrb, ["prune", "--json", "--keep-last", "10"], throughWan);
    const deleted = (JSON.parse(prune.out) as { deleted: unknown[] }).deleted.length;
    log(`vrb prune: ${deleted} snapshots deleted in ${(prune.ms / 1000).toFixed(2)} s`);
    figures.push({ command: `vrb prune (${deleted} deleted)`, ms: [prune.ms], cpuMs: [prune.cpuMs] });
    if (o.json) {
      process.stdout.write(`${JSON.stringify({ snapshots: o.snapshots, clusters: o.clusters, wanDelayMs: 20, figures })}\n`);
      return;
    }
    const rows = figures.map((f) => `${f.command.padEnd(28)}${(median(f.ms) / 1000).toFixed(2).padStart(8)} s${(median(f.cpuMs) / 1000).toFixed(2).padStart(10)} CPU-s`);
    process.stdout.write(
      [
        `${o.snapshots} snapshots of each of ${o.clusters} cluster(s) in S3 behind 20 ms each way; medians of ${o.repeat}`,
        `${"command".padEnd(28)}${"wall".padStart(10)}${"CPU".padStart(16)}`,
        ...rows,
        "",
      ].join("\n"),
    );
  } finally {
    relay.stop();
    await localDown(join(dir, "env")).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Copies of the snapshot at `key` as `cluster`'s, the `from`-th to the `count - 1`-th hour before
 * it (by default all but the hour of the original, which is that snapshot), each with its own
 * manifest (cluster, key, time and raft index rewritten).
 */
export async function fillCatalogue(env: Awaited<ReturnType<typeof localUp>>, key: string, cluster: string, prefix: string, count: number, from = 1): Promise<void> {
  const s3 = localS3Client(env.s3!);
  const bucket = env.bucket!;
  try {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKeyFor(key) }));
    const manifest = JSON.parse(await got.Body!.transformToString()) as SnapshotManifest;
    const takenAt = Date.parse(manifest.takenAt);
    const copies = Array.from({ length: count - from }, (_, i) => i + from);
    await mapLimit(copies, 32, async (i) => {
      const at = new Date(takenAt - i * 3_600_000);
      const index = Math.max(1, manifest.raft.index - i);
      const copyKey = snapshotKeyFor(prefix, cluster, at, index);
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: copyKey, CopySource: `${bucket}/${key}` }));
      const body = JSON.stringify({ ...manifest, cluster, key: copyKey, takenAt: at.toISOString(), raft: { ...manifest.raft, index } });
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKeyFor(copyKey), Body: body, ContentType: "application/json" }));
    });
  } finally {
    s3.destroy();
  }
}
