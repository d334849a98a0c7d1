import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { OperationError } from "../engine/errors.js";
import { nodeRunning, wipeNode } from "../engine/throwaway/nodes.js";
import { addNodes, defaultLocalDir, loadEnvironment, localUp, saveEnvironment, type LocalEnvironment } from "./environment.js";
import { localS3Client, s3ServerRunning } from "./s3server.js";
import { validatePolicy } from "../engine/policy.js";
import { silentProgress, type Progress } from "../engine/progress.js";
import { localClusterRestoreKeys } from "../engine/restore/keys.js";
import { stagedRestore, type RestoreReport } from "../engine/restore/restore.js";
import { runBackup } from "../engine/backup/backup.js";
import { SnapshotStore } from "../engine/catalogue/snapshot-store.js";
import { S3Store } from "../engine/storage/s3/store.js";
import { VaultClient } from "../engine/vault/client.js";
import { ensureKvV2, kvGet, kvPut } from "../engine/vault/kv-v2.js";
import { findActiveNode } from "../engine/vault/operations.js";

export interface DemoOptions {
  /** Local environment folder (default .vrb/local); started if it is not running. */
  dir?: string;
  /** How many secrets to seed (each gets two versions). */
  secrets?: number;
  progress?: Progress;
}

export interface DemoPhase {
  phase: string;
  durationMs: number;
  detail: string;
}

export interface DemoReport {
  ok: boolean;
  dir: string;
  cluster: string;
  backup: { bucket: string; key: string; bytes: number; sha256: string; raftIndex: number };
  destroyed: string[];
  rebuilt: { id: string; addr: string }[];
  checked: { secrets: number; versions: number; mismatches: string[] };
  restore: RestoreReport;
  timeline: DemoPhase[];
  totalMs: number;
}

const MOUNT = "demo";
const CANARY = "dr-canary";

/**
 * The whole disaster story on the local environment: seed secrets, back up, lose every node and
 * its data, rebuild a new 3-node cluster from the bucket with a staged restore, and read every
 * secret back. The environment's state then lists the new nodes only.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoReport> {
  const progress = opts.progress ?? silentProgress;
  const dir = opts.dir ?? defaultLocalDir();
  const count = opts.secrets ?? 200;
  const started = Date.now();
  const timeline: DemoPhase[] = [];
  const phase = async <T>(name: string, body: () => Promise<[T, string]>): Promise<T> => {
    const t0 = Date.now();
    progress.info(`== ${name}`);
    const [value, detail] = await body();
    timeline.push({ phase: name, durationMs: Date.now() - t0, detail });
    return value;
  };

  const env = await phase("local environment", async () => {
    const existing = loadEnvironment(dir);
    if (existing?.keys && existing.s3 && existing.nodes.length && existing.nodes.every(nodeRunning) && s3ServerRunning(existing.s3)) {
      return [existing, `running in ${dir}: ${existing.nodes.length} node(s)`];
    }
    if (existing && (existing.nodes.some(nodeRunning) || (existing.s3 !== undefined && s3ServerRunning(existing.s3)))) {
      throw new OperationError(`the local environment in ${dir} is partly running or has no keys; run 'vrb local down' and try again`);
    }
    const fresh = await localUp({ dir, progress });
    return [fresh, `started in ${dir}: ${fresh.nodes.length} nodes, ${fresh.s3!.kind} S3`];
  });
  const keys = env.keys!;
  const rootToken = keys.rootToken;

  const expected = await phase("seed secrets", async () => {
    const { addr } = await findActiveNode(
      new VaultClient({ addr: env.nodes[0]!.apiAddr }),
      env.nodes.map((n) => n.apiAddr),
    );
    const client = new VaultClient({ addr, token: rootToken });
    try {
      await ensureKvV2(client, MOUNT);
      const values = new Map<string, string[]>();
      const run = Date.now().toString(36);
      for (let v = 1; v <= 2; v++) {
        for (let i = 0; i < count; i += 25) {
          await Promise.all(
            Array.from({ length: Math.min(25, count - i) }, async (_, j) => {
              const path = `app-${String(i + j).padStart(4, "0")}`;
              const value = `${run}-v${v}-${randomBytes(6).toString("hex")}`;
              await kvPut(client, MOUNT, path, { value });
              values.set(path, [...(values.get(path) ?? []), value]);
            }),
          );
        }
      }
      await kvPut(client, MOUNT, CANARY, { alive: "yes" });
      return [values, `${count} secrets x 2 versions in ${MOUNT}/, plus ${MOUNT}/${CANARY}`];
    } finally {
      await client.close();
    }
  });

  const s3Server = env.s3!;
  const s3 = localS3Client(s3Server);
  try {
    const policy = validatePolicy({
      cluster: { name: env.clusterName, nodes: env.nodes.map((n) => n.apiAddr) },
      destination: { bucket: env.bucket!, endpoint: s3Server.endpoint, region: s3Server.region, forcePathStyle: true },
      verify: { canaries: [`${MOUNT}/data/${CANARY}`] },
    });
    // The local server's own credentials, not the SDK's chain: the demo needs no AWS_* variables.
    const objects = new S3Store({ client: s3, bucket: env.bucket!, prefix: policy.destination.prefix, ownsClient: false });
    const backup = await phase("back up", async () => {
      const r = await runBackup({ policy, token: rootToken, store: objects, progress });
      return [r, `${objects.url(r.key)} (${r.bytes} bytes, raft index ${r.raft.index})`];
    });

    const destroyed = await phase("disaster: destroy every node and its data", async () => {
      const ids = await destroyAllNodes(env);
      return [ids, `${ids.join(", ")} stopped, data deleted`];
    });

    const fresh = await phase("start 3 new empty nodes", async () => {
      const nodes = await addNodes(env, 3, progress);
      return [nodes, nodes.map((n) => `${n.id} ${n.apiAddr}`).join(", ")];
    });

    const restore = await phase("staged restore from the bucket", async () => {
      const r = await stagedRestore({
        mode: "rebuild",
        nodes: fresh.map((n) => n.apiAddr),
        store: new SnapshotStore(objects),
        snapshot: "latest",
        cluster: env.clusterName,
        keys: localClusterRestoreKeys(keys),
        canaries: policy.verify?.canaries,
        progress,
      });
      return [r, `${r.nodes.length} voters, autopilot ${r.autopilot?.healthy ? "healthy" : "?"}, failure tolerance ${r.autopilot?.failureTolerance}`];
    });

    const checked = await phase("read every secret back", async () => {
      // The original root token comes back with the snapshot: the restored cluster is the old one.
      const client = new VaultClient({ addr: fresh[1]!.apiAddr, token: rootToken });
      try {
        const mismatches: string[] = [];
        let versions = 0;
        const paths = [...expected.keys()];
        for (let i = 0; i < paths.length; i += 25) {
          await Promise.all(
            paths.slice(i, i + 25).map(async (path) => {
              const values = expected.get(path)!;
              for (const [k, value] of values.entries()) {
                const got = await kvGet(client, MOUNT, path, k + 1);
                versions++;
                if (got?.value !== value) mismatches.push(`${MOUNT}/${path} v${k + 1}`);
              }
            }),
          );
        }
        return [
          { secrets: paths.length, versions, mismatches },
          mismatches.length ? `${mismatches.length} MISMATCH(ES)` : `${paths.length} secrets, ${versions} versions: all equal`,
        ];
      } finally {
        await client.close();
      }
    });

    const report: DemoReport = {
      ok: restore.ok && checked.mismatches.length === 0,
      dir,
      cluster: env.clusterName,
      backup: { bucket: backup.bucket, key: backup.key, bytes: backup.bytes, sha256: backup.sha256, raftIndex: backup.raft.index },
      destroyed,
      rebuilt: fresh.map((n) => ({ id: n.id, addr: n.apiAddr })),
      checked,
      restore,
      timeline,
      totalMs: Date.now() - started,
    };
    if (!report.ok)
      throw Object.assign(new OperationError(`demo: ${checked.mismatches.length} secret version(s) differ after the restore: ${checked.mismatches.slice(0, 5).join(", ")}`), {
        report,
      });
    return report;
  } finally {
    s3.destroy();
  }
}

/** Stops every node, deletes its folder, and drops it from the state (no stale pids left behind). */
async function destroyAllNodes(env: LocalEnvironment): Promise<string[]> {
  const ids = env.nodes.map((n) => n.id);
  await Promise.all(env.nodes.map((n) => wipeNode(n)));
  for (const n of env.nodes) rmSync(dirname(n.dataDir), { recursive: true, force: true });
  env.nodes = [];
  saveEnvironment(env);
  return ids;
}

export function formatDemo(report: DemoReport): string {
  const lines = [`disaster recovery demo (${report.dir})`, "", "timeline:"];
  let at = 0;
  for (const p of report.timeline) {
    lines.push(`  +${(at / 1000).toFixed(1).padStart(6)}s  ${p.phase.padEnd(44)} ${(p.durationMs / 1000).toFixed(1).padStart(6)}s  ${p.detail}`);
    at += p.durationMs;
  }
  lines.push("", "restore steps:");
  for (const s of report.restore.steps) {
    lines.push(
      `  ${s.result.padEnd(7)} ${`${s.step}${s.node ? ` @ ${s.node}` : ""}`.padEnd(70)} ${(s.durationMs / 1000).toFixed(2).padStart(7)}s${s.detail ? `  ${s.detail}` : ""}`,
    );
  }
  lines.push(
    "",
    `backup:   s3://${report.backup.bucket}/${report.backup.key}`,
    `lost:     ${report.destroyed.join(", ")}`,
    `rebuilt:  ${report.rebuilt.map((n) => `${n.id} ${n.addr}`).join(", ")}`,
    `secrets:  ${report.checked.secrets} secrets, ${report.checked.versions} versions read back, ${report.checked.mismatches.length} different`,
    `result:   ${report.ok ? "every secret is back" : "FAILED"} in ${(report.totalMs / 1000).toFixed(1)}s; see 'vrb local status'`,
  );
  return lines.join("\n");
}
