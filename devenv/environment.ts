import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { OperationError } from "../engine/errors.js";
import { registerSecret } from "../engine/redact.js";
import { silentProgress, type Progress } from "../engine/progress.js";
import { VaultClient } from "../engine/vault/client.js";
import { describeProduct, productProfile, type Product } from "../engine/vault/product.js";
import { bootstrapCluster, nodeRunning, startFreshNodes, startNode, stopNode, wipeNode, type LocalClusterKeys, type LocalNode, type NodeShape } from "../engine/throwaway/nodes.js";
import { createLockedBucket, localS3Client, s3ServerKindFromEnv, startS3Server, stopS3Server, type LocalS3Server, type S3ServerKind } from "./s3server.js";
import { createLocalCa, type LocalCa } from "../engine/throwaway/tls.js";
import { productBinary } from "../engine/throwaway/binaries.js";
import {
  addTransitKey,
  registerTransitSecrets,
  startTransitSealServer,
  stopTransitSealServer,
  transitSealFor,
  transitSealServerRunning,
  type TransitSealServer,
} from "./transit.js";

export type LocalSealType = "shamir" | "transit";

/**
 * The production shape the environment's nodes have. Defaults are the product's own: Shamir seal,
 * plain HTTP on 127.0.0.1, the listener's own generate-root setting (OpenBao: disabled; Vault 1.x:
 * served).
 */
export interface LocalShape {
  seal: LocalSealType;
  tls: boolean;
  /** Serve the unauthenticated generate-root endpoints (OpenBao: a non-default listener line; Vault 1.x: its default). */
  unauthedGenerateRoot: boolean;
  /** seal "transit": the key on the transit seal server that the environment's nodes use. */
  transitKeyName?: string;
}

export const DEFAULT_LOCAL_SHAPE: LocalShape = Object.freeze({ seal: "shamir", tls: false, unauthedGenerateRoot: false }) as LocalShape;

/**
 * Everything `vrb local up` started: written to `<dir>/state.json` with mode 0600 (it holds the
 * root token and the unseal or recovery keys of a throwaway local cluster, and the transit seal
 * tokens), the folder itself 0700.
 */
export interface LocalEnvironment {
  format: 1;
  dir: string;
  clusterName: string;
  /** Which server the nodes run; absent in state files written before products existed: OpenBao. */
  product?: Product;
  /** The shape of the environment's nodes; nodes added later (addNodes) get the same. */
  shape: LocalShape;
  nodes: LocalNode[];
  keys?: LocalClusterKeys;
  /** The transit seal server (seal "transit"). */
  transitSeal?: TransitSealServer;
  /** The transit seal server was given to localUp (shared): `localDown` leaves it running. */
  transitSealShared?: boolean;
  /** The private CA (tls: true); `tls.caCertPath` is what clients trust (VAULT_CACERT). */
  tls?: LocalCa;
  s3?: LocalS3Server;
  bucket?: string;
  /** Next node index to hand out, so rebuilt nodes get raft ids the old cluster never had. */
  nextNodeIndex: number;
}

export interface LocalUpOptions {
  /** Which server the nodes run: "openbao" (default: needs no Go build) or "vault". */
  product?: Product;
  dir?: string;
  nodes?: number;
  /** Start the nodes uninitialised (a restore target). */
  init?: boolean;
  /** Unseal key shares (Shamir) or recovery key shares (transit). */
  shares?: number;
  threshold?: number;
  /**
   * "shamir" (default); "transit": start a transit seal server of the environment's own (stopped by
   * localDown); `{ transit: server }`: seal with a server started by `startTransitSealServer`, which
   * several environments can share (localDown leaves it running). `transitKeyName` picks another
   * key on it (made with `addTransitKey`); default: the server's key.
   */
  seal?: LocalSealType | { transit: TransitSealServer; transitKeyName?: string };
  /** Private CA and node certificates; nodes listen with TLS. */
  tls?: boolean;
  /** Serve the unauthenticated generate-root endpoints (NOT OpenBao's default; Vault 1.x serves them anyway). */
  unauthedGenerateRoot?: boolean;
  s3?: S3ServerKind | false;
  bucket?: string;
  clusterName?: string;
  progress?: Progress;
}

/** Per-call changes to the environment's shape for new nodes. */
export interface NodeShapeOverride {
  /** Seal with this key of the environment's transit seal server (see createTransitKey). */
  transitKeyName?: string;
}

/**
 * The environment's shape made concrete for new nodes (its transit seal key and token, its CA):
 * pass it as `startFreshNodes(dir, n, { shape: nodeShapeOf(state) })`.
 */
export function nodeShapeOf(state: LocalEnvironment, override: NodeShapeOverride = {}): NodeShape {
  const shape: NodeShape = { product: state.product ?? "openbao" };
  if (state.shape.unauthedGenerateRoot) shape.unauthedGenerateRoot = true;
  if (state.shape.tls) {
    if (!state.tls) throw new OperationError(`the local environment in ${state.dir} has TLS but no CA recorded`);
    shape.ca = state.tls;
  }
  if (state.shape.seal === "transit" || override.transitKeyName) {
    if (!state.transitSeal) throw new OperationError(`the local environment in ${state.dir} has no transit seal server`);
    shape.transitSeal = transitSealFor(state.transitSeal, override.transitKeyName ?? state.shape.transitKeyName);
  }
  return shape;
}

/** A VaultClient for the environment (first node unless `addr`), trusting its CA when TLS is on. */
export function localVaultClient(state: LocalEnvironment, opts: { addr?: string; token?: string; retries?: number } = {}): VaultClient {
  return new VaultClient({
    addr: opts.addr ?? state.nodes[0]?.apiAddr ?? "http://127.0.0.1:1",
    token: opts.token,
    caCert: state.tls?.caCertPath,
    retries: opts.retries,
  });
}

export function defaultLocalDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.VRB_LOCAL_DIR ?? join(process.cwd(), ".vrb", "local"));
}

/**
 * `vrb local <verb>` as a user types it for the environment in `dir`: with `--dir` unless `dir` is
 * the one the command finds by itself (the default, or VRB_LOCAL_DIR), so that a hint printed for
 * an environment elsewhere works when pasted.
 */
export function localCommand(verb: string, dir: string): string {
  if (resolve(dir) === defaultLocalDir()) return `vrb local ${verb}`;
  const quoted = /^[A-Za-z0-9_./:@%+=,-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, `'\\''`)}'`;
  return `vrb local ${verb} --dir ${quoted}`;
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
  // States written before shapes (or products) existed: OpenBao with its defaults.
  state.shape ??= { ...DEFAULT_LOCAL_SHAPE };
  state.product ??= "openbao";
  if (state.keys) state.keys.sealType ??= "shamir";
  registerSecret(state.keys?.rootToken);
  state.keys?.unsealKeysB64.forEach(registerSecret);
  state.keys?.recoveryKeysB64?.forEach(registerSecret);
  registerTransitSecrets(state.transitSeal);
  for (const n of state.nodes) registerSecret(n.transitSeal?.token);
  return state;
}

export function requireEnvironment(dir = defaultLocalDir()): LocalEnvironment {
  const state = loadEnvironment(dir);
  if (!state) throw new OperationError(`no local environment in ${dir}; start one with 'vrb local up'`);
  return state;
}

/**
 * Starts N nodes of `product` (Raft; OpenBao unless told) and the S3 server; initialises and joins
 * them unless `init: false`.
 */
export async function localUp(opts: LocalUpOptions = {}): Promise<LocalEnvironment> {
  const dir = resolve(opts.dir ?? defaultLocalDir());
  const progress = opts.progress ?? silentProgress;
  const existing = loadEnvironment(dir);
  const ownSealRunning = existing?.transitSeal && !existing.transitSealShared && transitSealServerRunning(existing.transitSeal);
  if (existing && (existing.nodes.some(nodeRunning) || ownSealRunning)) {
    throw new OperationError(`a local environment is already running in ${dir}; run 'vrb local down' first`);
  }
  // A missing server binary fails here, naming how to install it, before anything starts.
  productBinary(opts.product ?? "openbao");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const count = opts.nodes ?? 3;
  const sealOpt = opts.seal ?? "shamir";
  const state: LocalEnvironment = {
    format: 1,
    dir,
    clusterName: opts.clusterName ?? "local",
    product: opts.product ?? "openbao",
    shape: { seal: typeof sealOpt === "string" ? sealOpt : "transit", tls: opts.tls === true, unauthedGenerateRoot: opts.unauthedGenerateRoot === true },
    nodes: [],
    nextNodeIndex: count + 1,
  };
  if (state.product !== "openbao" && state.product !== "vault") {
    throw new OperationError(`product '${String(state.product)}' is not supported; use 'openbao' or 'vault'`);
  }
  if (state.shape.seal !== "shamir" && state.shape.seal !== "transit") {
    throw new OperationError(`seal '${String(state.shape.seal)}' is not supported; use 'shamir' or 'transit'`);
  }
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
    if (state.shape.tls) {
      state.tls = createLocalCa(dir);
      progress.info(`TLS: private CA ${state.tls.caCertPath}`);
    }
    let transitKeyName: string | undefined;
    if (typeof sealOpt === "object") {
      state.transitSeal = sealOpt.transit;
      state.transitSealShared = true;
      transitKeyName = sealOpt.transitKeyName;
      registerTransitSecrets(state.transitSeal);
      if (!transitSealServerRunning(state.transitSeal)) {
        throw new OperationError(`the transit seal server at ${state.transitSeal.address} is not running`);
      }
    } else if (sealOpt === "transit") {
      state.transitSeal = await startTransitSealServer(dir, { progress });
      saveEnvironment(state);
    }
    if (state.transitSeal) state.shape.transitKeyName = transitKeyName ?? state.transitSeal.keyName;
    const shape = nodeShapeOf(state);
    progress.info(`nodes: ${describeProduct(state.product!)} (${productProfile(state.product!).tool})`);
    state.nodes = await startFreshNodes(dir, count, { progress, shape });
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
    if (state.transitSeal && !state.transitSealShared) await stopTransitSealServer(state.transitSeal);
    if (state.s3) await stopS3Server(state.s3);
    saveEnvironment(state);
    throw new OperationError(`local environment failed to start: ${err instanceof Error ? err.message : String(err)}\n` + `processes stopped; logs kept in ${dir}`, { cause: err });
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
  // The seal server goes after the nodes: a node still running must not lose its seal first.
  const stopSeal = state.transitSeal && !state.transitSealShared;
  if (stopSeal) await stopTransitSealServer(state.transitSeal!);
  if (state.s3) await stopS3Server(state.s3);
  rmSync(dir, { recursive: true, force: true });
  const others = [stopSeal ? "the transit seal server" : "", state.s3 ? "the S3 server" : ""].filter(Boolean);
  progress.info(`stopped ${state.nodes.length} node(s)${others.length ? ` and ${others.join(" and ")}` : ""}; removed ${dir}`);
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
  if (state.tls) {
    vars.VAULT_CACERT = state.tls.caCertPath;
    vars.BAO_CACERT = state.tls.caCertPath;
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

/** `export` lines for `eval "$(vrb local env)"`, after a comment naming the product. */
export function environmentExports(state: LocalEnvironment): string {
  const lines = Object.entries(environmentVariables(state)).map(([k, v]) => `export ${k}='${v.replace(/'/g, "'\\''")}'`);
  return [`# vrb local: ${describeProduct(state.product ?? "openbao")} nodes`, ...lines].join("\n");
}

export interface AddNodesOptions extends NodeShapeOverride {
  progress?: Progress;
}

/**
 * Adds fresh, uninitialised nodes of the environment's shape (restore targets): same seal (transit
 * key, or another key with `transitKeyName`), same CA, same listener settings.
 */
export async function addNodes(state: LocalEnvironment, count: number, opts: Progress | AddNodesOptions = {}): Promise<LocalNode[]> {
  const o: AddNodesOptions = "info" in opts && typeof opts.info === "function" ? { progress: opts as Progress } : (opts as AddNodesOptions);
  const shape = nodeShapeOf(state, { transitKeyName: o.transitKeyName });
  const nodes = await startFreshNodes(state.dir, count, { firstIndex: state.nextNodeIndex, progress: o.progress ?? silentProgress, shape });
  state.nextNodeIndex += count;
  state.nodes.push(...nodes);
  saveEnvironment(state);
  return nodes;
}

/**
 * Creates another key (and a token limited to it) on the environment's transit seal server; nodes
 * made with `{ transitKeyName: name }` seal with it, so they cannot decrypt a keyring sealed by the
 * environment's own key. Returns the key name.
 */
export async function createTransitKey(state: LocalEnvironment, name: string): Promise<string> {
  if (!state.transitSeal) throw new OperationError(`the local environment in ${state.dir} has no transit seal server`);
  await addTransitKey(state.transitSeal, name);
  saveEnvironment(state);
  return name;
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
