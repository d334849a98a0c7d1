import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { OperationError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { silentProgress, type Progress } from "../progress.js";
import { VaultClient } from "../vault/client.js";
import { autopilotState, nodeHealth, raftConfiguration, type NodeRole } from "../vault/operations.js";
import { bootstrapCluster, nodeRunning, startFreshNodes, startNode, stopNode, wipeNode, type LocalClusterKeys, type LocalNode } from "./cluster.js";
import {
  createLockedBucket,
  localS3Client,
  s3ServerRunning,
  s3ServerKindFromEnv,
  startS3Server,
  stopS3Server,
  type LocalS3Server,
  type S3ServerKind,
} from "./s3server.js";

/**
 * Everything `vrb local up` started: written to `<dir>/state.json` with mode 0600 (it holds the
 * root token and unseal keys of a throwaway local cluster), the folder itself 0700.
 */
export interface LocalEnvironment {
  format: 1;
  dir: string;
  clusterName: string;
  nodes: LocalNode[];
  keys?: LocalClusterKeys;
  s3?: LocalS3Server;
  bucket?: string;
  /** Next node index to hand out, so rebuilt nodes get raft ids the old cluster never had. */
  nextNodeIndex: number;
}

export interface LocalUpOptions {
  dir?: string;
  nodes?: number;
  /** Start the nodes uninitialised (a restore target). */
  init?: boolean;
  shares?: number;
  threshold?: number;
  s3?: S3ServerKind | false;
  bucket?: string;
  clusterName?: string;
  progress?: Progress;
}

export function defaultLocalDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.VRB_LOCAL_DIR ?? join(process.cwd(), ".vrb", "local"));
}

const stateFile = (dir: string) => join(dir, "state.json");

export function saveEnvironment(envState: LocalEnvironment): void {
  mkdirSync(envState.dir, { recursive: true, mode: 0o700 });
  chmodSync(envState.dir, 0o700);
  writeFileSync(stateFile(envState.dir), JSON.stringify(envState, null, 2) + "\n", { mode: 0o600 });
  chmodSync(stateFile(envState.dir), 0o600);
}

export function loadEnvironment(dir = defaultLocalDir()): LocalEnvironment | undefined {
  if (!existsSync(stateFile(dir))) return undefined;
  const state = JSON.parse(readFileSync(stateFile(dir), "utf8")) as LocalEnvironment;
  registerSecret(state.keys?.rootToken);
  state.keys?.unsealKeysB64.forEach(registerSecret);
  return state;
}

export function requireEnvironment(dir = defaultLocalDir()): LocalEnvironment {
  const state = loadEnvironment(dir);
  if (!state) throw new OperationError(`no local environment in ${dir}; start one with 'vrb local up'`);
  return state;
}

/** Starts N OpenBao nodes (Raft) and the S3 server; initialises and joins them unless `init: false`. */
export async function localUp(opts: LocalUpOptions = {}): Promise<LocalEnvironment> {
  const dir = resolve(opts.dir ?? defaultLocalDir());
  const progress = opts.progress ?? silentProgress;
  const existing = loadEnvironment(dir);
  if (existing && existing.nodes.some(nodeRunning)) {
    throw new OperationError(`a local environment is already running in ${dir}; run 'vrb local down' first`);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const count = opts.nodes ?? 3;
  const state: LocalEnvironment = {
    format: 1,
    dir,
    clusterName: opts.clusterName ?? "local",
    nodes: [],
    nextNodeIndex: count + 1,
  };
  try {
    if (opts.s3 !== false) {
      const kind = opts.s3 ?? s3ServerKindFromEnv();
      progress.info(`starting ${kind} S3 server`);
      state.s3 = await startS3Server(dir, kind);
      saveEnvironment(state);
      state.bucket = opts.bucket ?? "vrb-snapshots";
      const s3 = localS3Client(state.s3);
      try {
        await createLockedBucket(s3, state.bucket);
      } finally {
        s3.destroy();
      }
      progress.info(`S3 ${state.s3.endpoint}: bucket ${state.bucket} (versioning, object lock)`);
    }
    state.nodes = await startFreshNodes(dir, count, { progress });
    saveEnvironment(state);
    if (opts.init !== false) {
      state.keys = await bootstrapCluster(state.nodes, { shares: opts.shares, threshold: opts.threshold, progress });
    } else {
      progress.info(`${count} node(s) running uninitialised (--no-init)`);
    }
    saveEnvironment(state);
    return state;
  } catch (err) {
    // Nothing half-started stays running; the logs stay for the post-mortem.
    await Promise.all(state.nodes.map((n) => stopNode(n)));
    if (state.s3) await stopS3Server(state.s3);
    saveEnvironment(state);
    throw new OperationError(
      `local environment failed to start: ${err instanceof Error ? err.message : String(err)}\n` +
        `processes stopped; logs kept in ${dir}`,
      { cause: err },
    );
  }
}

/** Stops every process the environment started (by pid) and removes its data. */
export async function localDown(dir = defaultLocalDir(), progress: Progress = silentProgress): Promise<void> {
  const state = loadEnvironment(dir);
  if (!state) {
    progress.info(`nothing to stop in ${dir}`);
    return;
  }
  await Promise.all(state.nodes.map((n) => stopNode(n)));
  if (state.s3) await stopS3Server(state.s3);
  rmSync(dir, { recursive: true, force: true });
  progress.info(`stopped ${state.nodes.length} node(s)${state.s3 ? " and the S3 server" : ""}; removed ${dir}`);
}

export interface NodeStatus {
  id: string;
  addr: string;
  pid?: number;
  running: boolean;
  role: NodeRole;
  version?: string;
  raftIndex?: number;
  voter?: boolean;
}

export interface LocalStatus {
  dir: string;
  nodes: NodeStatus[];
  s3?: { kind: S3ServerKind; endpoint: string; running: boolean; bucket?: string };
  autopilot?: { healthy: boolean; failureTolerance: number };
}

export async function localStatus(state: LocalEnvironment): Promise<LocalStatus> {
  const client = new VaultClient({ addr: state.nodes[0]?.apiAddr ?? "http://127.0.0.1:1", token: state.keys?.rootToken, retries: 0 });
  try {
    const nodes: NodeStatus[] = await Promise.all(
      state.nodes.map(async (n) => {
        const c = client.forNode(n.apiAddr);
        const h = await nodeHealth(c);
        let raftIndex: number | undefined;
        if (h.role === "active" || h.role === "standby") {
          const leader = await c
            .get<{ raft_applied_index?: number }>("sys/leader", { anonymous: true })
            .catch(() => undefined);
          raftIndex = leader?.body.raft_applied_index;
        }
        return { id: n.id, addr: n.apiAddr, pid: n.pid, running: nodeRunning(n), role: h.role, version: h.version, raftIndex };
      }),
    );
    const active = nodes.find((n) => n.role === "active");
    let autopilot: LocalStatus["autopilot"];
    if (active && state.keys) {
      const c = client.forNode(active.addr);
      const [config, ap] = await Promise.all([raftConfiguration(c).catch(() => undefined), autopilotState(c).catch(() => undefined)]);
      for (const n of nodes) n.voter = config?.servers.find((s) => s.node_id === n.id)?.voter;
      if (ap) autopilot = { healthy: ap.healthy, failureTolerance: ap.failure_tolerance };
    }
    return {
      dir: state.dir,
      nodes,
      s3: state.s3 ? { kind: state.s3.kind, endpoint: state.s3.endpoint, running: s3ServerRunning(state.s3), bucket: state.bucket } : undefined,
      autopilot,
    };
  } finally {
    await client.close();
  }
}

export function formatStatus(status: LocalStatus): string {
  const lines = [`local environment: ${status.dir}`];
  for (const n of status.nodes) {
    const bits = [n.role, n.running ? `pid ${n.pid}` : "not running"];
    if (n.voter !== undefined) bits.push(n.voter ? "voter" : "non-voter");
    if (n.raftIndex !== undefined) bits.push(`raft index ${n.raftIndex}`);
    if (n.version) bits.push(`v${n.version}`);
    lines.push(`  ${n.id.padEnd(8)} ${n.addr}  ${bits.join(", ")}`);
  }
  if (status.autopilot) {
    lines.push(`  autopilot: ${status.autopilot.healthy ? "healthy" : "UNHEALTHY"}, failure tolerance ${status.autopilot.failureTolerance}`);
  }
  if (status.s3) {
    lines.push(`  s3 (${status.s3.kind}): ${status.s3.endpoint} ${status.s3.running ? "running" : "not running"}, bucket ${status.s3.bucket ?? "-"}`);
  }
  return lines.join("\n");
}

/** The variables that point Vault, S3 and vrb clients at the environment (what `vrb local env` exports). */
export function environmentVariables(state: LocalEnvironment): Record<string, string> {
  const vars: Record<string, string> = {};
  const addr = state.nodes[0]?.apiAddr;
  if (addr) {
    vars.VAULT_ADDR = addr;
    vars.BAO_ADDR = addr;
  }
  if (state.keys) {
    vars.VAULT_TOKEN = state.keys.rootToken;
    vars.BAO_TOKEN = state.keys.rootToken;
  }
  vars.VRB_NODES = state.nodes.map((n) => n.apiAddr).join(",");
  if (state.s3) {
    vars.AWS_ENDPOINT_URL_S3 = state.s3.endpoint;
    vars.AWS_ACCESS_KEY_ID = state.s3.accessKeyId;
    vars.AWS_SECRET_ACCESS_KEY = state.s3.secretAccessKey;
    vars.AWS_REGION = state.s3.region;
  }
  if (state.bucket) vars.VRB_BUCKET = state.bucket;
  vars.VRB_CLUSTER = state.clusterName;
  return vars;
}

/** `export` lines for `eval "$(vrb local env)"`. */
export function environmentExports(state: LocalEnvironment): string {
  return Object.entries(environmentVariables(state))
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, "'\\''")}'`)
    .join("\n");
}

/** Adds fresh, uninitialised nodes to the environment (restore targets). */
export async function addNodes(state: LocalEnvironment, count: number, progress: Progress = silentProgress): Promise<LocalNode[]> {
  const nodes = await startFreshNodes(state.dir, count, { firstIndex: state.nextNodeIndex, progress });
  state.nextNodeIndex += count;
  state.nodes.push(...nodes);
  saveEnvironment(state);
  return nodes;
}

export function findNode(state: LocalEnvironment, idOrAddr: string): LocalNode {
  const node = state.nodes.find((n) => n.id === idOrAddr || n.apiAddr === idOrAddr || n.id === `node-${idOrAddr}`);
  if (!node) throw new OperationError(`no node '${idOrAddr}' in the local environment (have: ${state.nodes.map((n) => n.id).join(", ")})`);
  return node;
}

export async function stopLocalNode(state: LocalEnvironment, id: string, opts: { wipe?: boolean } = {}): Promise<void> {
  const node = findNode(state, id);
  if (opts.wipe) await wipeNode(node);
  else await stopNode(node);
  saveEnvironment(state);
}

export async function startLocalNode(state: LocalEnvironment, id: string): Promise<void> {
  const node = findNode(state, id);
  await startNode(node);
  saveEnvironment(state);
}
