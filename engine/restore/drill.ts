import type { Identities } from "../crypto/identities.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OperationError } from "../errors.js";
import { nodeRunning, startFreshNodes, stopNode, type LocalNode, type NodeShape } from "../local/cluster.js";
import { silentProgress, type Progress } from "../progress.js";
import type { SnapshotStore } from "../snapshot/store.js";
import { VaultClient } from "../vault/client.js";
import { kvInventory, type MountInventory } from "./inventory.js";
import type { RestoreKeys } from "./keys.js";
import { revokeOwnToken } from "./root-token.js";
import { findWorkingToken } from "./token.js";
import { restoreReportOf, stagedRestore, type RestoreReport } from "./staged.js";

export interface DrillOptions {
  store: SnapshotStore;
  /** "latest" (default) | "s3://bucket/key" | key */
  snapshot?: string;
  cluster?: string;
  /** The original cluster's unseal or recovery keys (and its init root token, if the keys file has it). */
  keys?: RestoreKeys;
  /** A token of the original cluster; without one the drill tries the keys file's root token, then generate-root. */
  token?: string;
  /** Size of the throwaway cluster (default 3). */
  nodes?: number;
  canaries?: string[];
  /** The drill fails when the restored cluster holds fewer KV secrets than this. */
  minSecrets?: number;
  /**
   * How the throwaway nodes are configured. An auto-unseal snapshot needs nodes with the same seal
   * (e.g. `{ sealStanza }` from the cluster's own `seal "..." {}` block, or a local transit seal);
   * default: OpenBao's defaults with a Shamir seal.
   */
  shape?: NodeShape;
  /** Decrypts a client-side encrypted snapshot (engine/crypto/identities.ts). */
  identities?: Identities;
  /** Parent folder for the throwaway nodes (default: the OS temp folder). */
  workDir?: string;
  progress?: Progress;
  timeoutsMs?: Partial<{ step: number; total: number }>;
}

export interface DrillReport {
  ok: boolean;
  snapshot: RestoreReport["snapshot"];
  nodes: number;
  /** From the start of the drill until the restored cluster was proven healthy: the recovery time a real rebuild can expect. */
  rtoMs: number;
  nodeStartMs: number;
  restore: RestoreReport;
  inventory: MountInventory[];
  secrets: number;
  canaries: { path: string; ok: boolean }[];
  problems: string[];
  teardown: { stopped: number; removed: string };
}

/**
 * A restore rehearsal: the snapshot goes into a throwaway local cluster of fresh nodes, which must
 * come up whole (voters, autopilot, canaries, secret counts); then everything is torn down.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillReport> {
  const progress = opts.progress ?? silentProgress;
  const count = opts.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new OperationError(`a drill needs at least 1 node, got ${count}`);
  const started = Date.now();
  const dir = mkdtempSync(join(opts.workDir ?? tmpdir(), "vrb-drill-"));
  let nodes: LocalNode[] = [];
  try {
    progress.info(`drill: starting ${count} fresh node(s) in ${dir}`);
    nodes = await startFreshNodes(dir, count, { idPrefix: "drill", progress, shape: opts.shape });
    const nodeStartMs = Date.now() - started;
    const restore = await stagedRestore({
      mode: "rebuild",
      nodes: nodes.map((n) => n.apiAddr),
      store: opts.store,
      snapshot: opts.snapshot ?? "latest",
      cluster: opts.cluster,
      keys: opts.keys,
      token: opts.token,
      canaries: opts.canaries,
      identities: opts.identities,
      progress,
      timeoutsMs: opts.timeoutsMs,
    });
    const rtoMs = Date.now() - started;
    const problems: string[] = [];
    const inventory = await withToken(nodes[0]!.apiAddr, opts, (c) => kvInventory(c));
    if (!inventory) {
      problems.push("the KV secrets could not be counted: no token worked on the restored cluster (give VAULT_TOKEN or a keys file with the init root_token)");
    }
    const secrets = (inventory ?? []).reduce((a, m) => a + m.secrets, 0);
    if (inventory && opts.minSecrets !== undefined && secrets < opts.minSecrets)
      problems.push(`restored cluster holds ${secrets} KV secrets, expected at least ${opts.minSecrets}`);
    if (inventory) progress.info(`drill: ${secrets} KV secret(s) in ${inventory.length} mount(s): ${inventory.map((m) => `${m.mount} ${m.secrets}`).join(", ") || "none"}`);
    return {
      ok: restore.ok && problems.length === 0,
      snapshot: restore.snapshot,
      nodes: count,
      rtoMs,
      nodeStartMs,
      restore,
      inventory: inventory ?? [],
      secrets,
      canaries: restore.canaries,
      problems,
      teardown: await teardown(nodes, dir, progress),
    };
  } catch (err) {
    await teardown(nodes, dir, progress);
    const report = restoreReportOf(err);
    throw Object.assign(err instanceof Error ? err : new OperationError(String(err)), report ? { report } : {});
  }
}

/** Runs `body` with a working token of the restored cluster (a generated one is revoked after); undefined when none works. */
async function withToken<T>(addr: string, opts: DrillOptions, body: (c: VaultClient) => Promise<T>): Promise<T | undefined> {
  const client = new VaultClient({ addr });
  try {
    const found = await findWorkingToken(client, { token: opts.token, keys: opts.keys }, opts.progress);
    if (found.source === "none") return undefined;
    try {
      return await body(client);
    } finally {
      if (found.source === "generated") await revokeOwnToken(client).catch(() => undefined);
    }
  } finally {
    await client.close();
  }
}

async function teardown(nodes: LocalNode[], dir: string, progress: Progress): Promise<{ stopped: number; removed: string }> {
  const running = nodes.filter(nodeRunning).length;
  await Promise.all(nodes.map((n) => stopNode(n)));
  rmSync(dir, { recursive: true, force: true });
  progress.info(`drill: stopped ${running} node(s), removed ${dir}`);
  return { stopped: running, removed: dir };
}
