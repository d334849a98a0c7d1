import { createReadStream, statSync } from "node:fs";
import { OperationError, ConfigError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { sleep, waitFor } from "../wait.js";
import { VaultClient, VaultHttpError } from "./client.js";
import { detectProduct, type Product } from "./product.js";

export type NodeRole = "active" | "standby" | "sealed" | "uninitialized" | "unreachable";

export interface NodeHealth {
  addr: string;
  role: NodeRole;
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version?: string;
  /** Which product answered (engine/vault/product.ts); absent when the node did not answer. */
  product?: Product;
  clusterId?: string;
  clusterName?: string;
  /** Why the node is unreachable, when it is. */
  error?: string;
}

interface HealthBody {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  version?: string;
  cluster_id?: string;
  cluster_name?: string;
}

/**
 * `sys/health` without a token; 200 active, 429 standby, 501 uninitialised, 503 sealed. Vault also
 * answers 472 (DR secondary), 473 (performance standby), 474 (a standby that lost its connection to
 * the active node) and 530 (removed from the cluster; its body says initialised/sealed as usual):
 * the body, not the code, gives the role.
 */
export async function nodeHealth(client: VaultClient): Promise<NodeHealth> {
  try {
    const res = await client.get<HealthBody>("sys/health", {
      anonymous: true,
      okStatuses: [429, 472, 473, 474, 501, 503, 530],
      timeoutMs: 5_000,
    });
    const b = res.body;
    const role: NodeRole = !b.initialized ? "uninitialized" : b.sealed ? "sealed" : b.standby ? "standby" : "active";
    return {
      addr: client.addr,
      role,
      initialized: b.initialized,
      sealed: b.sealed,
      standby: b.standby,
      version: b.version,
      product: detectProduct(b),
      clusterId: b.cluster_id || undefined,
      clusterName: b.cluster_name || undefined,
    };
  } catch (err) {
    return {
      addr: client.addr,
      role: "unreachable",
      initialized: false,
      sealed: true,
      standby: false,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

export interface InitResult {
  /** Unseal keys (Shamir seal); empty for an auto-unseal seal. */
  unsealKeysB64: string[];
  /** Recovery keys (auto-unseal seals: transit, cloud KMS, PKCS#11); empty for Shamir. */
  recoveryKeysB64: string[];
  rootToken: string;
}

/**
 * How `sys/init` splits the keys. A Shamir node takes `secret_*`; an auto-unseal node unseals
 * itself and takes `recovery_*` instead (it refuses secret shares other than its default).
 */
export type InitShape = { kind: "shamir"; shares: number; threshold: number } | { kind: "recovery"; shares: number; threshold: number };

export async function initialize(client: VaultClient, shape: InitShape): Promise<InitResult> {
  const body =
    shape.kind === "shamir" ? { secret_shares: shape.shares, secret_threshold: shape.threshold } : { recovery_shares: shape.shares, recovery_threshold: shape.threshold };
  const res = await client.put<{ keys_base64?: string[] | null; recovery_keys_base64?: string[] | null; root_token: string }>("sys/init", body, {
    anonymous: true,
  });
  const unsealKeysB64 = res.body.keys_base64 ?? [];
  const recoveryKeysB64 = res.body.recovery_keys_base64 ?? [];
  [...unsealKeysB64, ...recoveryKeysB64].forEach(registerSecret);
  registerSecret(res.body.root_token);
  return { unsealKeysB64, recoveryKeysB64, rootToken: res.body.root_token };
}

export interface SealStatus {
  sealed: boolean;
  t: number;
  n: number;
  progress: number;
  initialized: boolean;
  /** "shamir", or the auto-unseal seal's type ("transit", "awskms", "gcpckms", "azurekeyvault", "pkcs11", ...). */
  type: string;
  /** True for auto-unseal seals: their keys are recovery keys; `t`/`n` then describe the recovery keys. */
  recovery_seal: boolean;
  cluster_id?: string;
  version?: string;
}

export async function sealStatus(client: VaultClient): Promise<SealStatus> {
  return (await client.get<SealStatus>("sys/seal-status", { anonymous: true })).body;
}

/**
 * Submits unseal keys until the node reports unsealed. Starts from a reset so a half-finished
 * attempt by someone else cannot mix with ours. Wrong or too few keys end in a clear error.
 */
export async function unseal(client: VaultClient, keys: string[], label = client.addr, opts: { timeoutMs?: number } = {}): Promise<void> {
  keys.forEach(registerSecret);
  const before = await sealStatus(client);
  if (!before.initialized) throw new OperationError(`cannot unseal ${label}: it is not initialised`);
  if (!before.sealed) return;
  if (keys.length < before.t) {
    throw new ConfigError(`cannot unseal ${label}: it needs ${before.t} unseal keys (threshold) but ${keys.length} were given; add keys to the unseal keys file`, {
      field: "unsealKeys",
      stage: `unseal ${label}`,
    });
  }
  await client.put("sys/unseal", { reset: true }, { anonymous: true });
  for (const [i, key] of keys.entries()) {
    let status: SealStatus;
    try {
      status = (await client.put<SealStatus>("sys/unseal", { key }, { anonymous: true })).body;
    } catch (err) {
      if (err instanceof VaultHttpError && err.status === 400) {
        throw new OperationError(`unseal key #${i + 1} was rejected by ${label} (${err.errors.join("; ") || "bad key"}); check that the keys belong to this cluster`, {
          stage: `unseal ${label}`,
        });
      }
      throw err;
    }
    if (!status.sealed) return;
    if (i + 1 >= status.t && status.progress === 0) break;
  }
  // All keys were accepted. A node that just joined raft finishes unsealing in the background
  // (it fetches the keyring from the leader), so wait for it before calling the keys wrong.
  try {
    await waitFor(async () => ((await sealStatus(client)).sealed ? undefined : true), {
      what: `${label} to finish unsealing`,
      timeoutMs: opts.timeoutMs ?? 60_000,
      intervalMs: 200,
    });
  } catch (err) {
    await client.put("sys/unseal", { reset: true }, { anonymous: true }).catch(() => undefined);
    throw new OperationError(`${label} is still sealed after ${keys.length} accepted unseal keys; check its log, and that the keys belong to this cluster`, {
      stage: `unseal ${label}`,
      cause: err,
    });
  }
}

export async function waitUntilRole(client: VaultClient, roles: NodeRole[], what: string, timeoutMs: number): Promise<NodeHealth> {
  return waitFor(
    async () => {
      const h = await nodeHealth(client);
      return roles.includes(h.role) ? h : undefined;
    },
    { what, timeoutMs, intervalMs: 200 },
  );
}

/**
 * Finds the active node among `addrs` (snapshots come from the active node only): the first that reports active wins; a
 * standby's `sys/leader` points at the leader otherwise. Sealed or uninitialised clusters are
 * clear errors, raised before any data moves.
 */
export async function findActiveNode(client: VaultClient, addrs: string[]): Promise<{ addr: string; health: NodeHealth[] }> {
  const health = await Promise.all(addrs.map((a) => nodeHealth(client.forNode(a))));
  const active = health.find((h) => h.role === "active");
  if (active) return { addr: active.addr, health };
  for (const h of health.filter((x) => x.role === "standby")) {
    try {
      const res = await client.forNode(h.addr).get<{ leader_address?: string; is_self?: boolean }>("sys/leader", { anonymous: true });
      const leader = res.body.leader_address;
      if (leader) {
        const lh = await nodeHealth(client.forNode(leader));
        if (lh.role === "active") return { addr: lh.addr, health: [...health, lh] };
      }
    } catch {
      // try the next standby
    }
  }
  const summary = health.map((h) => `${h.addr}: ${h.role}${h.error ? ` (${h.error})` : ""}`).join(", ");
  if (health.every((h) => h.role === "uninitialized")) {
    throw new OperationError(`the cluster is not initialised (${summary}); nothing to back up`, { stage: "preflight" });
  }
  if (!health.some((h) => h.role === "standby") && health.some((h) => h.role === "sealed")) {
    throw new OperationError(`no active node: the cluster is sealed (${summary}); unseal it first`, { stage: "preflight" });
  }
  // Standbys and no leader: an election is under way (or quorum is lost). Waiting may help.
  throw new NoActiveNodeError(`no active node found among ${addrs.length} node(s): ${summary}`, { electing: health.some((h) => h.role === "standby") });
}

/**
 * No node is active, but some are standbys: a leader election is in progress (or the cluster lost
 * quorum). `electing` is false when no node answered at all. Unlike a sealed or uninitialised
 * cluster, this can end by itself: `waitForActiveNode` waits for it.
 */
export class NoActiveNodeError extends OperationError {
  readonly electing: boolean;
  constructor(message: string, opts: { electing: boolean; cause?: unknown }) {
    super(message, { stage: "preflight", cause: opts.cause });
    this.electing = opts.electing;
  }
}

/** The leader wait ran out: not worth another attempt (that would only wait again). */
export class LeaderWaitTimeoutError extends OperationError {}

/**
 * Finds the active node, waiting up to `timeoutMs` while the cluster has standbys but no leader
 * (an election: usually under a second, sometimes several). `check(addr)` may confirm the node
 * (e.g. that sys/leader agrees) and throw a NoActiveNodeError when leadership moved meanwhile.
 * Sealed, uninitialised or wholly unreachable clusters fail at once: waiting would not help.
 */
export async function waitForActiveNode<T>(
  client: VaultClient,
  addrs: string[],
  opts: {
    timeoutMs: number;
    intervalMs?: number;
    signal?: AbortSignal;
    onWait?: (message: string) => void;
    check: (found: { addr: string; health: NodeHealth[] }) => Promise<T>;
  },
): Promise<T> {
  const started = Date.now();
  let waiting = false;
  for (;;) {
    let last: NoActiveNodeError;
    try {
      return await opts.check(await findActiveNode(client, addrs));
    } catch (err) {
      if (!(err instanceof NoActiveNodeError) || !err.electing) throw err;
      last = err;
    }
    if (!waiting && opts.timeoutMs > 0) {
      waiting = true;
      opts.onWait?.(`no active node yet: election in progress, waiting (up to ${Math.round(opts.timeoutMs / 1000)}s)`);
    }
    const waited = Date.now() - started;
    if (waited >= opts.timeoutMs) {
      throw new LeaderWaitTimeoutError(`${last.message}; no node became active within the leader wait (${Math.round(opts.timeoutMs / 1000)}s)`, {
        stage: "preflight",
        cause: last,
      });
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    await sleep(Math.min(opts.intervalMs ?? 250, opts.timeoutMs - waited));
  }
}

/** The node's own applied raft index (`sys/leader`, no token needed; a standby reports its own). */
export async function appliedIndex(client: VaultClient): Promise<number> {
  const r = await client.get<{ raft_applied_index?: number; raft_committed_index?: number }>("sys/leader", { anonymous: true, timeoutMs: 5_000 });
  return r.body.raft_applied_index ?? r.body.raft_committed_index ?? 0;
}

/**
 * POSTs a verified snapshot file to `sys/storage/raft/snapshot` (or `snapshot-force`, for a
 * snapshot of another keyring) as a stream; no body timeout: a large snapshot takes what it takes.
 */
export async function restoreSnapshot(
  client: VaultClient,
  file: string,
  opts: {
    force: boolean;
    headersTimeoutMs: number;
    onBytes?: (sent: number, total: number) => void;
    /** Cancels the request (the node discards a partial upload). */
    signal?: AbortSignal;
  },
): Promise<void> {
  const path = opts.force ? "sys/storage/raft/snapshot-force" : "sys/storage/raft/snapshot";
  const size = statSync(file).size;
  const body = createReadStream(file, { highWaterMark: 1 << 20 });
  if (opts.onBytes) {
    let sent = 0;
    const onBytes = opts.onBytes;
    body.on("data", (chunk) => onBytes((sent += chunk.length), size));
  }
  const res = await client.open("POST", path, {
    body,
    headers: { "content-type": "application/octet-stream", "content-length": String(size) },
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: 0,
    signal: opts.signal,
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) {
    let errors: string[] = [];
    try {
      errors = ((JSON.parse(text) as { errors?: unknown[] }).errors ?? []).map(String);
    } catch {
      errors = text ? [text.slice(0, 200)] : [];
    }
    throw new VaultHttpError(client.addr, "POST", `/v1/${path}`, res.statusCode, errors);
  }
}
