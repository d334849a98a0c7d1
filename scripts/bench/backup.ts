// `npm run bench -- backup [--size 256MiB] [--s3 seaweedfs|moto] [--repeat N] [--json] [--no-wan] [--no-unpinned] [--no-encrypted] [--no-copy] [--no-provider] [--no-profile] [--faults]`
// On a throwaway 1-node local environment, fills the cluster to half the size and then to the full
// size, and at each size measures, on the same data in the same run:
//   (a) reading the snapshot stream to nothing (in the bench process),
//   (b) `vrb backup` (the real CLI in a child: wall time including Node start-up; the report's own
//       transfer time; CPU seconds and peak RSS of that child, by GNU time),
//   (c) the runbook: `bao operator raft snapshot save FILE`, then the real `aws s3 cp FILE` (AWS CLI
//       from the tools venv, its defaults), (u) being that `aws s3 cp` alone,
//   the irreducible work on FILE: SHA-256 of the file + gunzip + SHA-256 of the archive's bytes,
//   in CPU seconds, in a Node of its own (every backup must do at least that),
//   the same (b), (c), (u) unpinned (every process free to run anywhere, as users run them),
//   and with S3 behind a 20 ms-each-way link (the WAN profile),
//   (e) `vrb backup` with the snapshot encrypted to an age and to an OpenPGP recipient (wall, CPU
//       per GiB and peak RSS, each against the plain (b)),
//   (f) "one copy": `vrb backup` to S3 with an off-site copy on Azurite (one read from Vault, two
//       writes), against `vrb backup` to Azurite alone and to S3 alone (the slower of the two is the yardstick),
//   (p) the VaultSnapshot provider's backup in a Node started as Pulumi's dynamic-provider host is
//       (no flags), then in the child Node with vrb's heap settings that the provider starts,
//   and the servers' own CPU seconds during each, which tells whether they were the limit;
//   (r) at the larger size, one `vrb backup` under `node --cpu-prof`, its main thread's time by
//       what the code does (the irreducible hashing and gunzip, and what the pass adds);
//   before all that, the start-up: `vrb --version` and `vrb --help` wall, medians of 10 runs.
// `--faults` adds (d): `vrb backup` with S3 behind a proxy refusing 10 % of part uploads with
// 503 SlowDown and 2 % with 500 InternalError. Prints figures; never fails on a slow machine.
// The pieces: backup/measure.ts (what a run cost), backup/pinning.ts (which CPU runs what),
// backup/wan.ts (the WAN link), backup/scenarios.ts (what is run), backup/report.ts (the table),
// backup/profile.ts (the profile (r)).
import { BlobServiceClient } from "@azure/storage-blob";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { startAzurite, stopAzurite } from "../../devenv/azurite.js";
import { localDown, localUp } from "../../devenv/environment.js";
import { s3ServerKindFromEnv } from "../../devenv/s3server.js";
import { formatBytes } from "../../engine/progress.js";
import { VaultClient } from "../../engine/vault/client.js";
import { fillWithRandomData } from "../../engine/vault/fill.js";
import { irreducibleCpuMs, measureStartup, medianFigures, streamToNothing } from "./backup/measure.js";
import { CpuLayout } from "./backup/pinning.js";
import { formatProfile, type ProfileFigures } from "./backup/profile.js";
import { encryptedFigures, formatReport, formatStartup, marginalCpu, type SizeFigures } from "./backup/report.js";
import { Bench, vrbExecutable, type EncryptionFormat } from "./backup/scenarios.js";
import { describeWan, netemUnavailable, startDelayRelay } from "./backup/wan.js";
import { FaultProxy, partUploads } from "./fault-proxy.js";
import { parseSize } from "./size.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function parseArgs(args: string[]) {
  const o = {
    size: 256 * MiB,
    kind: s3ServerKindFromEnv(),
    repeat: 1,
    json: false,
    wan: true,
    unpinned: true,
    faults: false,
    encrypted: true,
    copy: true,
    provider: true,
    profile: true,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--size") o.size = parseSize(args[++i] ?? "");
    else if (a === "--s3") o.kind = s3ServerKindFromEnv({ VRB_S3_SERVER: args[++i] });
    else if (a === "--repeat") o.repeat = Math.max(1, Number(args[++i]) || 1);
    else if (a === "--json") o.json = true;
    else if (a === "--no-wan") o.wan = false;
    else if (a === "--no-unpinned") o.unpinned = false;
    else if (a === "--faults") o.faults = true;
    else if (a === "--no-encrypted") o.encrypted = false;
    else if (a === "--no-copy") o.copy = false;
    else if (a === "--no-provider") o.provider = false;
    else if (a === "--no-profile") o.profile = false;
    else
      throw new Error(
        `unknown option ${a}; use --size 256MiB|1GiB, --s3 seaweedfs|moto, --repeat N, --json, --no-wan, --no-unpinned, --no-encrypted, --no-copy, --no-provider, --no-profile, --faults`,
      );
  }
  return o;
}

export async function main(args: string[]): Promise<void> {
  const o = parseArgs(args);
  if (!existsSync("/usr/bin/time")) throw new Error("/usr/bin/time (GNU time) is needed to measure the CPU and peak RSS of each client");
  const log = (m: string) => process.stderr.write(`bench backup: ${m}\n`);
  const layout = new CpuLayout();
  const noNetem = o.wan ? netemUnavailable() : "--no-wan";
  const load = loadavg().map((l) => l.toFixed(2));
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${formatBytes(totalmem())} RAM, node ${process.version}, load average ${load.join(" ")} at start`;
  log(`machine: ${machine}; S3 server ${o.kind}`);
  log(`CPU layout: ${layout.describe()}`);
  if (o.wan) log(`WAN profile: ${describeWan(noNetem)}`);
  // Before anything is pinned or started: a user's `vrb` starts on an idle core, wherever it likes.
  const startup = await measureStartup(vrbExecutable());
  log(formatStartup(startup));
  layout.pinBench();
  const dir = mkdtempSync(join(tmpdir(), "vrb-bench-backup-"));
  const env = await localUp({ dir: join(dir, "env"), nodes: 1, s3: o.kind });
  for (const pid of [...env.nodes.map((n) => n.pid), env.s3?.pid]) if (pid) layout.addServer(pid);
  const bench = new Bench(env, dir);
  const results: SizeFigures[] = [];
  let profile: ProfileFigures | undefined;
  const proxy = o.faults ? await new FaultProxy(env.s3!.endpoint).start() : undefined;
  const relay = o.wan ? await startDelayRelay(env.s3!.endpoint) : undefined;
  if (relay) {
    bench.servers.push(relay.pid);
    layout.addServer(relay.pid);
  }
  const az = o.copy ? await startAzurite(join(dir, "azurite")) : undefined;
  const container = "vrb-bench";
  if (az) {
    await BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(container).create();
    if (az.pid) {
      bench.servers.push(az.pid);
      layout.addSecondStore(az.pid);
    }
  }
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
        const unpinned = o.unpinned && layout.pinned ? await layout.unpinned(() => bench.peers(file, `${name}-free`, a.ms)) : undefined;
        const wan = relay ? await bench.peers(file, `${name}-wan`, a.ms, relay.url) : undefined;
        const encrypted: SizeFigures["encrypted"] = {};
        for (const format of o.encrypted ? (["age", "pgp"] as EncryptionFormat[]) : []) {
          encrypted[format] = encryptedFigures(await bench.encryptedBackup(`${name}-${format}`, format), local.b, a.bytes, startup.version.cpuMs);
        }
        const copy = az ? await bench.withCopy(name, az, container) : undefined;
        const provider = o.provider ? await bench.provider(name) : undefined;
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
          backupLessStartup: (local.b.cpuMs - startup.version.cpuMs) / 1000 / gib,
          backupInProcess: (local.b.cpuMs - local.b.kernelCpuMs - startup.version.cpuMs) / 1000 / gib,
          irreducible: irreducible / 1000 / gib,
          stream: a.cpuMs / 1000 / gib,
          runbook: (local.save.cpuMs + local.u.cpuMs) / 1000 / gib,
        };
        runs.push({
          dataBytes: target,
          snapshotBytes: a.bytes,
          a: { ms: a.ms, cpuMs: a.cpuMs },
          local,
          unpinned,
          wan,
          irreducibleCpuMs: irreducible,
          cpuSecondsPerGiB: perGiB,
          cpuRatio: perGiB.backup / perGiB.irreducible,
          cpuRatioLessStartup: perGiB.backupLessStartup / perGiB.irreducible,
          cpuRatioInProcess: perGiB.backupInProcess / perGiB.irreducible,
          faults,
          encrypted: o.encrypted ? encrypted : undefined,
          copy,
          provider,
        });
        log(`size ${formatBytes(target)}, run ${r + 1}/${o.repeat}: done (load average ${loadavg()[0]!.toFixed(2)})`);
      }
      results.push(medianFigures(runs));
      if (o.profile && target === o.size) profile = await bench.profiledBackup(`bench-${i}-profile`);
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
    cpuLayout: layout.describe(),
    wan: o.wan ? describeWan(noNetem) : "skipped (--no-wan)",
    repeat: o.repeat,
    startup,
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
  };
  // With --json the figures go to stdout and the table to stderr, so one run gives both.
  const table = process[o.json ? "stderr" : "stdout"];
  table.write(formatReport(results, startup));
  if (profile) table.write(formatProfile(profile));
  table.write(`${context.cpuLayout}; WAN: ${context.wan}; medians of ${o.repeat} run(s); load average at end ${context.loadAverageAtEnd.join(" ")}\n`);
  if (o.json) process.stdout.write(JSON.stringify({ ...context, sizes: results, perFurtherGiB: marginalCpu(results), profile }, null, 2) + "\n");
}
