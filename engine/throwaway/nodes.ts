import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { VaultClient } from "../vault/client.js";
import { initialize, nodeHealth, unseal, waitUntilRole } from "../vault/operations.js";
import { joinRaft, setAutopilotConfig, waitForHealthyVoters } from "../vault/raft-peers.js";
import { waitFor } from "../wait.js";
import { freePort, renewPortReservation } from "./ports.js";
import { isAlive, startDetached, stopProcess, tailLog } from "./process.js";
import { issueNodeCertificate, type LocalCa, type NodeTlsFiles } from "./tls.js";
import { productProfile, type Product } from "../vault/product.js";
import { productBinary } from "./binaries.js";

/** What one node's `seal "transit"` stanza holds. */
export interface NodeTransitSeal {
  address: string;
  mountPath: string;
  keyName: string;
  /** Secret; limited to encrypt/decrypt with `keyName`. */
  token: string;
}

export interface LocalNode {
  /** Raft node id, e.g. "node-2". Unique within one local environment, also across rebuilds. */
  id: string;
  /** Which server runs it; absent in state files written before products existed: OpenBao. */
  product?: Product;
  apiAddr: string;
  clusterAddr: string;
  dataDir: string;
  configPath: string;
  logPath: string;
  pid?: number;
  /** TLS listener (https API and cluster addresses); absent: plain HTTP. */
  tls?: NodeTlsFiles;
  /** Auto-unseal through a transit seal server; absent: Shamir. */
  transitSeal?: NodeTransitSeal;
  /**
   * The unauthenticated generate-root endpoints are wanted, so a root token can be generated from
   * unseal/recovery keys without a token: NOT OpenBao's default (a listener line turns them on);
   * Vault 1.x serves them by default (productProfile).
   */
  unauthedGenerateRoot?: boolean;
  /** A seal stanza given as text (NodeShape.sealStanza). */
  sealStanza?: string;
  /** mTLS: the listener requires a client certificate from the node's CA (NodeShape.requireClientCert). */
  requireClientCert?: boolean;
  /** NOT the default (30s): the listener's `http_read_timeout` (NodeShape.httpReadTimeout). */
  httpReadTimeout?: string;
}

export interface LocalClusterKeys {
  /** Shamir unseal keys; empty for an auto-unseal (transit) cluster. */
  unsealKeysB64: string[];
  /** Recovery keys of an auto-unseal (transit) cluster; absent for Shamir. */
  recoveryKeysB64?: string[];
  rootToken: string;
  /** Threshold of the unseal keys (Shamir) or of the recovery keys (transit). */
  threshold: number;
  /** The seal type sys/seal-status reports: "shamir" or "transit". */
  sealType: string;
}

/**
 * How a new node is configured: the environment's shape made concrete (which product, which
 * transit key and token, which CA). The empty shape is an OpenBao node with its defaults: Shamir
 * seal, plain HTTP on 127.0.0.1, unauthenticated generate-root endpoints disabled.
 */
export interface NodeShape {
  /** Which server: "openbao" (default) or "vault"; each with its own listener defaults (engine/vault/product.ts). */
  product?: Product;
  /** Auto-unseal with this transit seal stanza instead of Shamir. */
  transitSeal?: NodeTransitSeal;
  /** Serve TLS with a certificate issued by this CA. */
  ca?: LocalCa;
  /** Serve the unauthenticated generate-root endpoints (a non-default relaxation on OpenBao; Vault 1.x's default). */
  unauthedGenerateRoot?: boolean;
  /**
   * A `seal "<type>" { ... }` stanza as written in a production server's config (any seal type:
   * transit, awskms, gcpckms, azurekeyvault, pkcs11): throwaway drill nodes of a cluster whose
   * seal the tool did not make. May hold credentials: written only to the node's 0600 config.
   */
  sealStanza?: string;
  /**
   * mTLS (needs `ca`): the listener requires and verifies a client certificate issued by the CA
   * (`tls_require_and_verify_client_cert`). The tool's own clients present the node's certificate;
   * a single node only (joins would need the leader's client certificate).
   */
  requireClientCert?: boolean;
  /**
   * The listener's `http_read_timeout` (a Go duration, e.g. "10m"), which bounds reading a whole
   * request, body included: a large snapshot restore upload needs more than OpenBao's 30s default.
   * Absent: OpenBao's default.
   */
  httpReadTimeout?: string;
}

/** Autopilot settings that suit a local cluster: promote new voters quickly. */
export const LOCAL_AUTOPILOT = {
  server_stabilization_time: "2s",
  last_contact_threshold: "10s",
  dead_server_last_contact_threshold: "24h",
  cleanup_dead_servers: false,
} as const;

const hclString = (v: string) => JSON.stringify(v);

/** The product of a node; nodes of state files from before products existed are OpenBao. */
export function productOf(node: { product?: Product }): Product {
  return node.product ?? "openbao";
}

function nodeConfig(node: LocalNode): string {
  const profile = productProfile(productOf(node));
  const api = new URL(node.apiAddr);
  const cluster = new URL(node.clusterAddr);
  const listenerTls = node.tls
    ? `  tls_cert_file   = ${hclString(node.tls.certFile)}
  tls_key_file    = ${hclString(node.tls.keyFile)}
${node.requireClientCert ? `  tls_require_and_verify_client_cert = true\n  tls_client_ca_file = ${hclString(node.tls.caFile)}\n` : ""}`
    : `  tls_disable     = true
`;
  // Per product: OpenBao >= 2.5.3 disables the unauthenticated generate-root endpoints by default
  // and only an explicit, non-default relaxation turns them on; Vault 1.x serves them already.
  const generateRoot = node.unauthedGenerateRoot ? profile.unauthedGenerateRootListener : "";
  const readTimeout = node.httpReadTimeout
    ? `  # NOT the default (30s): bounds reading a whole request, a restore upload's body included
  http_read_timeout = ${hclString(node.httpReadTimeout)}
`
    : "";
  const seal = node.transitSeal ? transitSealStanza(node.transitSeal) : node.sealStanza ? `${node.sealStanza.trim()}\n` : "";
  return `# written by vrb local
storage "raft" {
  path    = ${hclString(node.dataDir)}
  node_id = ${hclString(node.id)}
}
listener "tcp" {
  address         = "127.0.0.1:${api.port}"
  cluster_address = "127.0.0.1:${cluster.port}"
${listenerTls}${generateRoot}${readTimeout}}
${seal}${profile.serverConfigExtra}api_addr     = "${node.apiAddr}"
cluster_addr = "${node.clusterAddr}"
ui           = false
log_level    = "info"
`;
}

/** The `seal "transit"` stanza of a server config for this seal. */
export function transitSealStanza(seal: NodeTransitSeal): string {
  return `seal "transit" {
  address         = ${hclString(seal.address)}
  token           = ${hclString(seal.token)}
  key_name        = ${hclString(seal.keyName)}
  mount_path      = ${hclString(seal.mountPath)}
}
`;
}

/**
 * The environment a server of ours starts with: ours minus every VAULT_* / BAO_* variable.
 * A user's shell after `eval "$(vrb local env)"` holds VAULT_ADDR/VAULT_TOKEN of the cluster, and
 * both products read some for themselves (Vault the VAULT_* ones, OpenBao both prefixes:
 * VAULT_SEAL_TYPE picks a seal, the transit seal reads VAULT_ADDR/VAULT_TOKEN, Vault's
 * VAULT_DISABLE_MLOCK overrides the config); a node's config file is to be its only configuration,
 * as in production.
 */
export function serverEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(VAULT|BAO)_/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** A client for one local node that trusts the node's CA when it serves TLS. */
export function nodeClient(node: LocalNode, opts: { token?: string; retries?: number } = {}): VaultClient {
  const client = node.requireClientCert && node.tls ? { clientCert: node.tls.certFile, clientKey: node.tls.keyFile } : {};
  return new VaultClient({ addr: node.apiAddr, caCert: node.tls?.caFile, ...client, token: opts.token, retries: opts.retries });
}

/** Prepares a node on free ports under `dir` (config written, not started), of the given shape. */
export async function defineNode(dir: string, id: string, shape: NodeShape = {}): Promise<LocalNode> {
  const apiPort = await freePort();
  const clusterPort = await freePort();
  const nodeDir = join(dir, id);
  mkdirSync(join(nodeDir, "data"), { recursive: true, mode: 0o700 });
  const scheme = shape.ca ? "https" : "http";
  const product = shape.product ?? "openbao";
  const tool = productProfile(product).tool;
  const node: LocalNode = {
    id,
    product,
    apiAddr: `${scheme}://127.0.0.1:${apiPort}`,
    clusterAddr: `${scheme}://127.0.0.1:${clusterPort}`,
    dataDir: join(nodeDir, "data"),
    configPath: join(nodeDir, `${tool}.hcl`),
    logPath: join(nodeDir, `${tool}.log`),
  };
  if (shape.ca) node.tls = issueNodeCertificate(shape.ca, nodeDir, id);
  if (shape.transitSeal) node.transitSeal = { ...shape.transitSeal };
  if (shape.unauthedGenerateRoot) node.unauthedGenerateRoot = true;
  if (shape.sealStanza) node.sealStanza = shape.sealStanza;
  if (shape.httpReadTimeout) {
    if (!/^\d+(ms|s|m|h)$/.test(shape.httpReadTimeout))
      throw new ConfigError(`httpReadTimeout '${shape.httpReadTimeout}' is not a duration like 10m or 90s`, { field: "httpReadTimeout" });
    node.httpReadTimeout = shape.httpReadTimeout;
  }
  if (shape.requireClientCert) {
    if (!shape.ca) throw new OperationError("requireClientCert needs a CA (shape.ca): client certificates are verified against it");
    node.requireClientCert = true;
  }
  writeFileSync(node.configPath, nodeConfig(node), { mode: 0o600 });
  return node;
}

/** Starts the node's server and waits until its API answers (it is then sealed/uninitialised). */
export async function startNode(node: LocalNode, timeoutMs = 30_000): Promise<void> {
  if (nodeRunning(node)) return;
  for (const addr of [node.apiAddr, node.clusterAddr]) renewPortReservation(Number(new URL(addr).port));
  mkdirSync(node.dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(node.configPath, nodeConfig(node), { mode: 0o600 });
  const profile = productProfile(productOf(node));
  node.pid = startDetached(productBinary(productOf(node)), profile.serverArgs(node.configPath), node.logPath, serverEnvironment());
  const client = nodeClient(node, { retries: 0 });
  try {
    await waitFor(
      async () => {
        if (!nodeRunning(node)) {
          throw new OperationError(`${profile.displayName} node ${node.id} exited during start-up; log ${node.logPath}:\n${tailLog(node.logPath)}`);
        }
        const h = await nodeHealth(client);
        return h.role === "unreachable" ? undefined : h;
      },
      { what: `node ${node.id} to listen on ${node.apiAddr} (log: ${node.logPath})`, timeoutMs, intervalMs: 150 },
    );
  } catch (err) {
    if (!nodeRunning(node)) {
      throw new OperationError(`${profile.displayName} node ${node.id} exited during start-up; log ${node.logPath}:\n${tailLog(node.logPath)}`);
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

/**
 * Nodes whose cluster port another process held when they bound it. Both products log the failed
 * bind and carry on without a cluster listener: the node serves its API and even joins, but its peers
 * can send it nothing (raft, forwarding, heartbeats), so autopilot never calls the cluster healthy
 * and a wait for it would run to its deadline without saying why.
 */
export function clusterPortClash(nodes: LocalNode[]): string | undefined {
  const clashes = nodes.flatMap((node) => {
    const port = new URL(node.clusterAddr).port;
    let log: string;
    try {
      log = readFileSync(node.logPath, "utf8");
    } catch {
      return [];
    }
    const line = log.split("\n").find((l) => l.includes("error starting listener") && l.includes(`:${port}`));
    return line ? [`${node.id} could not listen on its cluster address ${node.clusterAddr}: another process holds port ${port} (its log: ${line.trim()})`] : [];
  });
  return clashes.length ? `${clashes.join("; ")}; nodes started again take new ports` : undefined;
}

function assertClusterListener(node: LocalNode): void {
  const clash = clusterPortClash([node]);
  if (clash) throw new OperationError(clash);
}

/** Stops the node and deletes its Raft data: the node is then "lost". */
export async function wipeNode(node: LocalNode): Promise<void> {
  await stopNode(node);
  rmSync(node.dataDir, { recursive: true, force: true });
}

/**
 * Defines and starts `count` fresh, uninitialised nodes with ids `<prefix>-<first..>`, of `shape`
 * (default: an OpenBao node with its defaults, Shamir, plain HTTP; `shape.product` picks the server;
 * see `nodeShapeOf` for an environment's shape).
 */
export async function startFreshNodes(
  dir: string,
  count: number,
  opts: { idPrefix?: string; firstIndex?: number; progress?: Progress; shape?: NodeShape } = {},
): Promise<LocalNode[]> {
  const progress = opts.progress ?? silentProgress;
  const first = opts.firstIndex ?? 1;
  const nodes: LocalNode[] = [];
  for (let i = 0; i < count; i++) {
    nodes.push(await defineNode(dir, `${opts.idPrefix ?? "node"}-${first + i}`, opts.shape));
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
 * Makes a fresh set of running nodes one cluster: init node 1, then join the others one at a time,
 * and wait until all are voters and autopilot is healthy.
 *
 * Shamir nodes: init with `shares`/`threshold` unseal keys, unseal node 1, then each other node
 * joins and is unsealed with the same keys. Transit (auto-unseal) nodes: init with recovery keys
 * (`shares`/`threshold` describe those); node 1 unseals itself, and on OpenBao 2.7.2 a node that
 * joins raft unseals itself right after the join (it gets the keyring from the leader and decrypts
 * it through its own seal), so there is no unseal step: we wait until it is a standby.
 */
export async function bootstrapCluster(nodes: LocalNode[], opts: { shares?: number; threshold?: number; progress?: Progress; timeoutMs?: number } = {}): Promise<LocalClusterKeys> {
  const progress = opts.progress ?? silentProgress;
  const shares = opts.shares ?? 5;
  const threshold = opts.threshold ?? 3;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const [first, ...rest] = nodes;
  if (!first) throw new OperationError("a cluster needs at least one node");
  const transit = Boolean(first.transitSeal);
  const leader = nodeClient(first);
  const leaderCa = first.tls ? readFileSync(first.tls.caFile, "utf8") : undefined;
  try {
    let keys: LocalClusterKeys;
    if (transit) {
      progress.info(`initialising ${first.id} (transit seal; ${shares} recovery key shares, threshold ${threshold})`);
      const init = await initialize(leader, { kind: "recovery", shares, threshold });
      keys = { unsealKeysB64: [], recoveryKeysB64: init.recoveryKeysB64, rootToken: init.rootToken, threshold, sealType: "transit" };
      leader.setToken(init.rootToken);
      await waitUntilRole(leader, ["active"], `${first.id} to unseal itself and become active`, timeoutMs);
      progress.info(`${first.id} auto-unsealed and active`);
      assertClusterListener(first);
    } else {
      progress.info(`initialising ${first.id} (${shares} key shares, threshold ${threshold})`);
      const init = await initialize(leader, { kind: "shamir", shares, threshold });
      keys = { unsealKeysB64: init.unsealKeysB64, rootToken: init.rootToken, threshold, sealType: "shamir" };
      await unseal(leader, init.unsealKeysB64.slice(0, threshold), first.id);
      leader.setToken(init.rootToken);
      await waitUntilRole(leader, ["active"], `${first.id} to become active`, timeoutMs);
      progress.info(`${first.id} unsealed and active`);
      assertClusterListener(first);
    }
    await setAutopilotConfig(leader, LOCAL_AUTOPILOT);
    for (const [i, node] of rest.entries()) {
      const c = leader.forNode(node.apiAddr);
      await joinRaft(c, first.apiAddr, leaderCa);
      if (transit) {
        await waitUntilRole(c, ["standby", "active"], `${node.id} to unseal itself after joining and become a standby`, timeoutMs);
        assertClusterListener(node);
        progress.info(`node ${i + 2}/${nodes.length} (${node.id}) joined and auto-unsealed`);
      } else {
        await unseal(c, keys.unsealKeysB64.slice(0, threshold), node.id);
        await waitUntilRole(c, ["standby", "active"], `${node.id} to become a standby`, timeoutMs);
        assertClusterListener(node);
        progress.info(`node ${i + 2}/${nodes.length} (${node.id}) joined and unsealed`);
      }
    }
    await waitForHealthyVoters(leader, nodes.length, timeoutMs);
    progress.info(`${nodes.length} voter(s), autopilot healthy`);
    return keys;
  } catch (err) {
    // A joining node without its cluster port never receives the keyring: its unseal wait times out first.
    const clash = clusterPortClash(nodes);
    throw clash ? new OperationError(clash, { cause: err }) : err;
  } finally {
    await leader.close();
  }
}
