import type { Identities } from "../crypto/identities.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InterruptedError, OperationError, throwIfInterrupted } from "../errors.js";
import { clusterPortClash, nodeRunning, startFreshNodes, stopNode, type LocalNode, type NodeShape } from "../throwaway/nodes.js";
import { silentProgress, type Progress } from "../progress.js";
import type { SnapshotStore, StoredSnapshot } from "../catalogue/snapshot-store.js";
import type { RemoteSnapshot } from "../catalogue/url-source.js";
import { VaultClient } from "../vault/client.js";
import { describeProduct, type Product } from "../vault/product.js";
import { kvInventory, type MountInventory } from "../restore/inventory.js";
import type { RestoreKeys } from "../restore/keys.js";
import type { RestoreSettingNames } from "../restore/setting-names.js";
import { revokeOwnToken } from "../restore/root-token.js";
import { findWorkingToken } from "../restore/token.js";
import { restoreReportOf, stagedRestore, type RestoreReport } from "../restore/restore.js";
import { throwawayFailure } from "../throwaway/teardown-failure.js";
import { explainUnloadable, pickThrowawayProduct } from "../throwaway/pick-product.js";
import { compareMountKeys, countRestoredKeys, type MountKeyCheck } from "./restored-keys.js";

export interface DrillOptions {
  /** Where `snapshot` is resolved; not needed with `remote`. */
  store?: SnapshotStore;
  /** A snapshot from elsewhere than the store (pre-signed URLs). */
  remote?: RemoteSnapshot;
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
   * default: the snapshot's product (its manifest says) with its defaults and a Shamir seal.
   * `product` forces another product than the snapshot's.
   */
  shape?: NodeShape;
  /** Decrypts a client-side encrypted snapshot (engine/crypto/identities.ts). */
  identities?: Identities;
  /** Parent folder for the throwaway nodes (default: the OS temp folder). */
  workDir?: string;
  progress?: Progress;
  timeoutsMs?: Partial<{ step: number; total: number }>;
  /** How the caller's user sets each option, as the restore's messages name them (default: the CLI's flags). */
  settingNames?: RestoreSettingNames;
  /** Stops the drill (SIGINT, SIGTERM): the restore stops at its next safe point, the throwaway nodes are stopped and removed. */
  signal?: AbortSignal;
}

export interface DrillReport {
  ok: boolean;
  snapshot: RestoreReport["snapshot"];
  nodes: number;
  /** The server the throwaway nodes ran (the snapshot's own product unless forced) and its version. */
  throwaway: ThrowawayNodes;
  /** From the start of the drill until the restored cluster was proven healthy: the recovery time a real rebuild can expect. */
  rtoMs: number;
  nodeStartMs: number;
  restore: RestoreReport;
  inventory: MountInventory[];
  secrets: number;
  /**
   * Keys per secret mount in the restored cluster (its own Raft snapshot, counted) against the
   * manifest's inventory; empty when the manifest has none (older versions) or no token worked.
   */
  mountKeys: MountKeyCheck[];
  canaries: { path: string; ok: boolean }[];
  problems: string[];
  teardown: ThrowawayTeardown;
}

/** Where a snapshot is restored to a throwaway cluster (the drill's and `vrb recover`'s machinery). */
export interface ThrowawayOptions {
  /** Where `snapshot` is resolved; not needed with `remote`. */
  store?: SnapshotStore;
  /** Decrypts a client-side encrypted snapshot (engine/crypto/identities.ts). */
  identities?: Identities;
  /** A snapshot from elsewhere than the store (pre-signed URLs). */
  remote?: RemoteSnapshot;
  /** "latest" (default) | "s3://bucket/key" | key */
  snapshot?: string;
  cluster?: string;
  keys?: RestoreKeys;
  token?: string;
  /** Size of the throwaway cluster. */
  nodes: number;
  canaries?: string[];
  shape?: NodeShape;
  workDir?: string;
  progress?: Progress;
  timeoutsMs?: Partial<{ step: number; total: number }>;
  settingNames?: RestoreSettingNames;
  /** Names the temp folder (`vrb-<label>-…`), the node ids and the progress lines: "drill", "recover". */
  label: string;
  /** Stops the restore at its next safe point and `body` before it starts; the throwaway cluster is torn down either way. */
  signal?: AbortSignal;
}

/** Which server the throwaway nodes ran: "HashiCorp Vault" 1.21.4, "OpenBao" 2.7.2. */
export interface ThrowawayNodes {
  product: Product;
  version?: string;
}

/** A throwaway cluster holding the snapshot, while the body of `withThrowawayCluster` runs. */
export interface ThrowawayCluster {
  dir: string;
  nodes: LocalNode[];
  throwaway: ThrowawayNodes;
  restore: RestoreReport;
  /** The snapshot restored, with its manifest. */
  snapshot: StoredSnapshot;
  /** When the throwaway run began (Date.now()). */
  started: number;
  nodeStartMs: number;
}

export interface ThrowawayTeardown {
  stopped: number;
  removed: string;
}

/**
 * Resolves the snapshot, starts `nodes` fresh local nodes of the snapshot's product (its manifest
 * says; `shape.product` forces one) in a private temp folder, restores the snapshot into them
 * (staged rebuild), runs `body`, and stops and removes everything however the restore or the body
 * ends: a throwaway cluster never outlives its command.
 */
export async function withThrowawayCluster<T>(opts: ThrowawayOptions, body: (cluster: ThrowawayCluster) => Promise<T>): Promise<{ result: T; teardown: ThrowawayTeardown }> {
  const progress = opts.progress ?? silentProgress;
  const count = opts.nodes;
  if (!Number.isInteger(count) || count < 1) throw new OperationError(`a throwaway cluster needs at least 1 node, got ${count}`);
  const started = Date.now();
  // Before any node starts: which product the snapshot needs, and that its binary is installed.
  const picked = await pickThrowawayProduct({ ...opts, product: opts.shape?.product });
  const throwaway: ThrowawayNodes = picked.nodes;
  progress.info(
    `${opts.label}: snapshot of ${describeProduct(picked.source.product, picked.source.version)}${picked.source.recorded ? "" : " (product guessed from the version: older manifest)"}; ` +
      `throwaway nodes: ${describeProduct(throwaway.product, throwaway.version)}`,
  );
  const dir = mkdtempSync(join(opts.workDir ?? tmpdir(), `vrb-${opts.label}-`));
  let nodes: LocalNode[] = [];
  let done: ThrowawayTeardown | undefined;
  try {
    progress.info(`${opts.label}: starting ${count} fresh node(s) in ${dir}`);
    nodes = await startFreshNodes(dir, count, { idPrefix: opts.label, progress, shape: { ...opts.shape, product: throwaway.product } });
    const nodeStartMs = Date.now() - started;
    const restore = await stagedRestore({
      mode: "rebuild",
      nodes: nodes.map((n) => n.apiAddr),
      store: opts.store,
      remote: opts.remote,
      snapshot: picked.ref,
      cluster: opts.cluster,
      keys: opts.keys,
      token: opts.token,
      canaries: opts.canaries,
      identities: opts.identities,
      progress,
      timeoutsMs: opts.timeoutsMs,
      settingNames: opts.settingNames,
      signal: opts.signal,
    }).catch((err: unknown) => {
      throw err instanceof InterruptedError ? err : explainUnloadable(err, picked);
    });
    throwIfInterrupted(opts.signal, "after the restore", opts.label);
    const result = await body({ dir, nodes, throwaway, restore, snapshot: picked.snapshot, started, nodeStartMs });
    done = await teardown(nodes, dir, opts.label, progress);
    return { result, teardown: done };
  } catch (err) {
    // Read before the teardown removes the logs: a node without its cluster port explains a restore that never turned healthy.
    const clash = clusterPortClash(nodes);
    if (clash && err instanceof Error) err.message = `${clash}\n${err.message}`;
    // The restore's own message names node states and commands for nodes that are now gone.
    done ??= await teardown(nodes, dir, opts.label, progress);
    throw throwawayFailure(err, opts.label, done, opts.settingNames?.rerun);
  } finally {
    if (!done) await teardown(nodes, dir, opts.label, progress);
  }
}

/**
 * A restore rehearsal: the snapshot goes into a throwaway local cluster of fresh nodes, which must
 * come up whole (voters, autopilot, canaries, secret counts); then everything is torn down.
 */
export async function runDrill(opts: DrillOptions): Promise<DrillReport> {
  const progress = opts.progress ?? silentProgress;
  const count = opts.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new OperationError(`a drill needs at least 1 node, got ${count}`);
  try {
    const { result, teardown } = await withThrowawayCluster(
      { ...opts, nodes: count, label: "drill" },
      async ({ dir, nodes, throwaway, restore, snapshot, started, nodeStartMs }) => {
        const rtoMs = Date.now() - started;
        const problems: string[] = [];
        const expected = snapshot.manifest?.inventory;
        const counted = await withRestoredToken(nodes[0]!.apiAddr, opts, async (c) => ({
          inventory: await kvInventory(c),
          // The restored data as the node holds it, key by key per mount, against what the backup counted.
          mountKeys: expected ? compareMountKeys(expected, await countRestoredKeys(c, dir)) : undefined,
        }));
        const inventory = counted?.inventory;
        if (counted?.mountKeys) {
          problems.push(...counted.mountKeys.problems);
          for (const m of counted.mountKeys.checked) {
            progress.info(`drill: mount ${m.mount} (${m.type}): ${m.found} keys${m.found === m.expected ? ", as the manifest counted" : `, the manifest counted ${m.expected}`}`);
          }
        } else if (counted && !expected) progress.info("drill: the manifest has no inventory (an older version's backup): keys per mount not compared");
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
          throwaway,
          rtoMs,
          nodeStartMs,
          restore,
          inventory: inventory ?? [],
          secrets,
          mountKeys: counted?.mountKeys?.checked ?? [],
          canaries: restore.canaries,
          problems,
        };
      },
    );
    return { ...result, teardown };
  } catch (err) {
    const report = restoreReportOf(err);
    throw Object.assign(err instanceof Error ? err : new OperationError(String(err)), report ? { report } : {});
  }
}

/**
 * Runs `body` with a working token of a restored cluster (the operator's, the keys file's root
 * token, or one made with generate-root, which is revoked after); undefined when none works.
 */
export async function withRestoredToken<T>(
  addr: string,
  from: { token?: string; keys?: RestoreKeys; progress?: Progress },
  body: (c: VaultClient) => Promise<T>,
): Promise<T | undefined> {
  const client = new VaultClient({ addr });
  try {
    const found = await findWorkingToken(client, { token: from.token, keys: from.keys }, from.progress);
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

async function teardown(nodes: LocalNode[], dir: string, label: string, progress: Progress): Promise<ThrowawayTeardown> {
  const running = nodes.filter(nodeRunning).length;
  await Promise.all(nodes.map((n) => stopNode(n)));
  rmSync(dir, { recursive: true, force: true });
  progress.info(`${label}: stopped ${running} node(s), removed ${dir}`);
  return { stopped: running, removed: dir };
}
