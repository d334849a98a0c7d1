import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { VaultClient } from "../vault/client.js";
import {
  initialize,
  joinRaft,
  nodeHealth,
  setAutopilotConfig,
  unseal,
  waitForHealthyVoters,
  waitUntilRole,
} from "../vault/operations.js";
import { waitFor } from "../wait.js";
import { freePort } from "./ports.js";
import { isAlive, startDetached, stopProcess, tailLog } from "./process.js";
import { toolPath } from "./tools.js";

export interface LocalNode {
  /** Raft node id, e.g. "node-2". Unique within one local environment, also across rebuilds. */
  id: string;
  apiAddr: string;
  clusterAddr: string;
  dataDir: string;
  configPath: string;
  logPath: string;
  pid?: number;
}

export interface LocalClusterKeys {
  unsealKeysB64: string[];
  rootToken: string;
  threshold: number;
}

/** Autopilot settings that suit a local cluster: promote new voters quickly. */
export const LOCAL_AUTOPILOT = {
  server_stabilization_time: "2s",
  last_contact_threshold: "10s",
  dead_server_last_contact_threshold: "24h",
  cleanup_dead_servers: false,
} as const;

function nodeConfig(node: LocalNode): string {
  const api = new URL(node.apiAddr);
  const cluster = new URL(node.clusterAddr);
  return `# written by vrb local
storage "raft" {
  path    = "${node.dataDir}"
  node_id = "${node.id}"
}
listener "tcp" {
  address         = "127.0.0.1:${api.port}"
  cluster_address = "127.0.0.1:${cluster.port}"
  tls_disable     = true
  # A staged restore may make a short-lived root token from the unseal keys (OTP flow); OpenBao
  # >= 2.5.3 turns the unauthenticated generate-root endpoints off unless told otherwise.
  disable_unauthed_generate_root_endpoints = false
}
api_addr     = "${node.apiAddr}"
cluster_addr = "${node.clusterAddr}"
ui           = false
log_level    = "info"
`;
}

/** Prepares a node on free ports under `dir` (config written, not started). */
export async function defineNode(dir: string, id: string): Promise<LocalNode> {
  const apiPort = await freePort();
  const clusterPort = await freePort();
  const nodeDir = join(dir, id);
  mkdirSync(join(nodeDir, "data"), { recursive: true, mode: 0o700 });
  const node: LocalNode = {
    id,
    apiAddr: `http://127.0.0.1:${apiPort}`,
    clusterAddr: `http://127.0.0.1:${clusterPort}`,
    dataDir: join(nodeDir, "data"),
    configPath: join(nodeDir, "bao.hcl"),
    logPath: join(nodeDir, "bao.log"),
  };
  writeFileSync(node.configPath, nodeConfig(node), { mode: 0o600 });
  return node;
}

/** Starts the node's server and waits until its API answers (it is then sealed/uninitialised). */
export async function startNode(node: LocalNode, timeoutMs = 30_000): Promise<void> {
  if (nodeRunning(node)) return;
  mkdirSync(node.dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(node.configPath, nodeConfig(node), { mode: 0o600 });
  node.pid = startDetached(toolPath("bao"), ["server", `-config=${node.configPath}`], node.logPath);
  const client = new VaultClient({ addr: node.apiAddr, retries: 0 });
  try {
    await waitFor(
      async () => {
        if (!nodeRunning(node)) {
          throw new OperationError(`OpenBao node ${node.id} exited during start-up; log ${node.logPath}:\n${tailLog(node.logPath)}`);
        }
        const h = await nodeHealth(client);
        return h.role === "unreachable" ? undefined : h;
      },
      { what: `node ${node.id} to listen on ${node.apiAddr} (log: ${node.logPath})`, timeoutMs, intervalMs: 150 },
    );
  } catch (err) {
    if (!nodeRunning(node)) {
      throw new OperationError(`OpenBao node ${node.id} exited during start-up; log ${node.logPath}:\n${tailLog(node.logPath)}`);
    }
    throw err;
  } finally {
    await client.close();
  }
}

/** Whether the node's own server process runs (not just some process with a reused pid). */
export function nodeRunning(node: LocalNode): boolean {
  return isAlive(node.pid, { marker: node.configPath });
}

export async function stopNode(node: LocalNode): Promise<void> {
  await stopProcess(node.pid, { marker: node.configPath });
  node.pid = undefined;
}

/** Stops the node and deletes its Raft data: the node is then "lost". */
export async function wipeNode(node: LocalNode): Promise<void> {
  await stopNode(node);
  rmSync(node.dataDir, { recursive: true, force: true });
}

/** Defines and starts `count` fresh, uninitialised nodes with ids `<prefix>-<first..>`. */
export async function startFreshNodes(
  dir: string,
  count: number,
  opts: { idPrefix?: string; firstIndex?: number; progress?: Progress } = {},
): Promise<LocalNode[]> {
  const progress = opts.progress ?? silentProgress;
  const first = opts.firstIndex ?? 1;
  const nodes: LocalNode[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await defineNode(dir, `${opts.idPrefix ?? "node"}-${first + i}`));
  }
  await Promise.all(
    nodes.map(async (n, i) => {
      progress.info(`starting node ${i + 1}/${count} (${n.id}) on ${n.apiAddr}`);
      await startNode(n);
    }),
  );
  return nodes;
}

/**
 * Makes a fresh set of running nodes one cluster: init node 1 (Shamir), unseal, join and unseal
 * the others one at a time, wait until all are voters and autopilot is healthy.
 */
export async function bootstrapCluster(
  nodes: LocalNode[],
  opts: { shares?: number; threshold?: number; progress?: Progress; timeoutMs?: number } = {},
): Promise<LocalClusterKeys> {
  const progress = opts.progress ?? silentProgress;
  const shares = opts.shares ?? 5;
  const threshold = opts.threshold ?? 3;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const [first, ...rest] = nodes;
  if (!first) throw new OperationError("a cluster needs at least one node");
  const leader = new VaultClient({ addr: first.apiAddr });
  try {
    progress.info(`initialising ${first.id} (${shares} key shares, threshold ${threshold})`);
    const init = await initialize(leader, { kind: "shamir", shares, threshold });
    const keys = init.unsealKeysB64.slice(0, threshold);
    await unseal(leader, keys, first.id);
    leader.setToken(init.rootToken);
    await waitUntilRole(leader, ["active"], `${first.id} to become active`, timeoutMs);
    progress.info(`${first.id} unsealed and active`);
    await setAutopilotConfig(leader, LOCAL_AUTOPILOT);
    for (const [i, node] of rest.entries()) {
      const c = leader.forNode(node.apiAddr);
      await joinRaft(c, first.apiAddr);
      await unseal(c, keys, node.id);
      await waitUntilRole(c, ["standby", "active"], `${node.id} to become a standby`, timeoutMs);
      progress.info(`node ${i + 2}/${nodes.length} (${node.id}) joined and unsealed`);
    }
    await waitForHealthyVoters(leader, nodes.length, timeoutMs);
    progress.info(`${nodes.length} voter(s), autopilot healthy`);
    return { unsealKeysB64: init.unsealKeysB64, rootToken: init.rootToken, threshold };
  } finally {
    await leader.close();
  }
}
