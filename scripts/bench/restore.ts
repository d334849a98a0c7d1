// `npm run bench -- restore [--secrets N] [--nodes N] [--size 1GiB] [--step-timeout S] [--json]`: a staged rebuild of a
// seeded cluster into fresh nodes, its time split into Vault's own work and our orchestration
// overhead. `--size` fills the cluster with that much random KV data (on top of the secrets).
import { rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SnapshotStore, VaultClient, runBackup, stagedRestore, stderrProgress, validatePolicy, type RestoreStep } from "../../engine/index.js";
import { startFreshNodes, stopNode, wipeNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { localS3Client } from "../../devenv/s3server.js";
import { localDown, localUp } from "../../devenv/environment.js";
import { localClusterRestoreKeys } from "../../engine/restore/keys.js";
import { fillWithRandomData } from "../../engine/vault/fill.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { S3Store } from "../../engine/storage/s3/store.js";

import { parseSize } from "./size.js";

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number >= 1`);
  return v;
}

/** Which part of a rebuild a step belongs to. */
function phaseOf(s: RestoreStep): string {
  if (/resolve|check target|generate-root is enabled|download/.test(s.step)) return "preflight (download + verify)";
  if (/initialise|throwaway|restore snapshot|seals itself/.test(s.step)) return "restore apply (init, restore, seal)";
  if (/node 1/.test(s.step)) return "unseal node 1 (original keys)";
  if (/join|unseal node|standby/.test(s.step)) return "join further nodes";
  if (/verify|canaries/.test(s.step)) return "verify (voters, autopilot, index)";
  return "token, peers, autopilot config";
}

/** The target listeners' http_read_timeout, as docs/restore.md recommends for large snapshots. */
const TARGET_HTTP_READ_TIMEOUT = "10m";

const sec = (ms: number) => `${(ms / 1000).toFixed(2).padStart(7)} s`;

export async function main(args: string[]): Promise<void> {
  const secrets = arg(args, "--secrets", 2000);
  const size = arg(args, "--nodes", 3);
  const sizeAt = args.indexOf("--size");
  const fill = sizeAt >= 0 ? parseSize(args[sizeAt + 1] ?? "") : 0;
  const json = args.includes("--json");
  // The waits that grow with the snapshot get deadlines from its size (engine/restore/deadlines.ts);
  // --step-timeout overrides every wait, as `vrb restore --step-timeout` does.
  const stepTimeoutS = args.includes("--step-timeout") ? arg(args, "--step-timeout", 120) : undefined;
  const dir = mkdtempSync(join(tmpdir(), "vrb-bench-restore-"));
  const log = (m: string) => process.stderr.write(`bench restore: ${m}\n`);
  let targets: LocalNode[] = [];
  const env = await localUp({ dir: join(dir, "source"), nodes: 3 });
  try {
    const client = new VaultClient({ addr: env.nodes[0]!.apiAddr, token: env.keys!.rootToken });
    await ensureKvV2(client, "secret");
    log(`seeding ${secrets} secrets`);
    for (let i = 0; i < secrets; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, secrets - i) }, (_, j) => kvPut(client, "secret", `bench/s-${i + j}`, { value: "x".repeat(256) })));
    }
    if (fill > 0) {
      log(`filling the cluster with ${(fill / 2 ** 20).toFixed(0)} MiB of random KV data`);
      await fillWithRandomData(client, { bytes: fill, mount: "bench" });
    }
    await client.close();
    const s3 = localS3Client(env.s3!);
    const policy = validatePolicy({
      cluster: { name: "bench", nodes: env.nodes.map((n) => n.apiAddr) },
      destination: { bucket: env.bucket!, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
    });
    const objects = new S3Store({ client: s3, bucket: env.bucket!, prefix: policy.destination.prefix, ownsClient: false });
    const backup = await runBackup({ policy, token: env.keys!.rootToken, store: objects });
    log(`snapshot ${backup.bytes} bytes at raft index ${backup.raft.index}; destroying the source nodes`);
    await Promise.all(env.nodes.map((n) => wipeNode(n)));
    // NOT OpenBao's default (30s): the documented setting for large restores (docs/restore.md), so
    // the snapshot-force upload of a GiB is not cut by the target listener's read timeout.
    targets = await startFreshNodes(join(dir, "targets"), size, { idPrefix: "target", shape: { httpReadTimeout: TARGET_HTTP_READ_TIMEOUT } });
    const report = await stagedRestore({
      mode: "rebuild",
      nodes: targets.map((n) => n.apiAddr),
      store: new SnapshotStore(objects),
      snapshot: `s3://${backup.bucket}/${backup.key}`,
      keys: localClusterRestoreKeys(env.keys!),
      ...(stepTimeoutS ? { timeoutsMs: { step: stepTimeoutS * 1000 } } : {}),
      progress: stderrProgress("bench restore"),
    });
    s3.destroy();

    const phases = new Map<string, { total: number; vault: number }>();
    for (const s of report.steps) {
      const p = phases.get(phaseOf(s)) ?? { total: 0, vault: 0 };
      p.total += s.durationMs;
      p.vault += s.vaultMs ?? 0;
      phases.set(phaseOf(s), p);
    }
    const vault = report.steps.reduce((a, s) => a + (s.vaultMs ?? 0), 0);
    const overhead = report.durationMs - vault;
    // A runbook downloads the snapshot too (aws s3 cp): our overhead beyond that transfer.
    const download = phases.get("preflight (download + verify)")?.total ?? 0;
    if (json) {
      const out = {
        nodes: size,
        secrets,
        snapshotBytes: backup.bytes,
        targetHttpReadTimeout: TARGET_HTTP_READ_TIMEOUT,
        totalMs: report.durationMs,
        vaultMs: vault,
        oursMs: overhead,
        oursShare: overhead / report.durationMs,
        downloadAndVerifyMs: download,
        oursBeyondDownloadShare: (overhead - download) / report.durationMs,
        phases: Object.fromEntries([...phases].map(([k, p]) => [k, { totalMs: p.total, vaultMs: p.vault }])),
      };
      process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      return;
    }
    const lines = [
      `staged rebuild: ${size} node(s), ${secrets} secrets, snapshot ${(backup.bytes / 2 ** 20).toFixed(1)} MiB; target listeners http_read_timeout = ${TARGET_HTTP_READ_TIMEOUT}`,
      `${"phase".padEnd(38)} ${"total".padStart(9)} ${"vault".padStart(9)} ${"ours".padStart(9)}`,
      ...[...phases].map(([name, p]) => `${name.padEnd(38)} ${sec(p.total)} ${sec(p.vault)} ${sec(p.total - p.vault)}`),
      `${"TOTAL".padEnd(38)} ${sec(report.durationMs)} ${sec(vault)} ${sec(overhead)}`,
      `orchestration overhead: ${((overhead / report.durationMs) * 100).toFixed(1)}% of the rebuild (polling granularity, checks, download + verify)`,
      `beyond the download + verify a runbook needs too (aws s3 cp): ${(((overhead - download) / report.durationMs) * 100).toFixed(1)}%`,
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await Promise.all(targets.map((n) => stopNode(n)));
    await localDown(env.dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
