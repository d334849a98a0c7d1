import { OperationError } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { VaultHttpError, VaultPermissionError, type VaultClient } from "./client.js";
import { describeProduct, type Product } from "./product.js";
import { NoActiveNodeError, sealStatus, waitForActiveNode, type NodeHealth } from "./operations.js";
import { autopilotState, raftConfiguration, type RaftServer } from "./raft-peers.js";

export interface PreflightReport {
  leaderAddr: string;
  version: string;
  /** Which product the active node is (its sys/health tells); absent when it did not say. */
  product?: Product;
  clusterId?: string;
  /**
   * The active node's seal (sys/seal-status, unauthenticated): "shamir" or an auto-unseal type, and
   * whether its keys are recovery keys. Absent (with a warning) when the node did not say.
   */
  seal?: { type: string; recoverySeal: boolean };
  /** raft_committed_index from sys/leader just before the snapshot; the snapshot's index is >= it. */
  committedIndex?: number;
  peers: RaftServer[];
  autopilot?: { healthy: boolean; failureTolerance: number };
  nodes: NodeHealth[];
  /** Things worth a look that do not stop a backup (unhealthy autopilot, unreachable followers). */
  warnings: string[];
}

function permissionHint(err: unknown, path: string): Error {
  // A 403 already says which path and capability (exit 2, not retried).
  if (err instanceof VaultPermissionError) return err;
  if (err instanceof VaultHttpError && (err.status === 403 || err.status === 401)) {
    return new OperationError(
      `Vault refused the token for ${path} (${err.status}): check VAULT_TOKEN, and that its policy allows read on ` +
        `sys/storage/raft/configuration, sys/storage/raft/autopilot/state and sys/storage/raft/snapshot`,
      { stage: "preflight", cause: err },
    );
  }
  return err instanceof OperationError ? err : new OperationError(`preflight: ${err instanceof Error ? err.message : String(err)}`, { stage: "preflight", cause: err });
}

/**
 * Checks a cluster before a backup: finds the active node among `nodes`, and requires an
 * initialised, unsealed cluster with a leader and listed raft peers. Autopilot health is reported
 * as a warning only: a degraded cluster is exactly when a backup matters most. Also reads the
 * active node's seal, which the manifest records (a restore checks its targets against it).
 */
export async function preflightCluster(
  client: VaultClient,
  nodes: string[],
  progress: Progress = silentProgress,
  opts: { leaderWaitMs?: number; signal?: AbortSignal } = {},
): Promise<PreflightReport> {
  const warnings: string[] = [];
  const { found, lead } = await waitForActiveNode(client, nodes, {
    timeoutMs: opts.leaderWaitMs ?? 0,
    signal: opts.signal,
    onWait: (m) => progress.warn(m),
    check: async (found) => {
      const lead = await client
        .forNode(found.addr)
        .get<{ is_self?: boolean; raft_committed_index?: number; leader_address?: string }>("sys/leader", { anonymous: true })
        .catch((err: unknown) => {
          throw permissionHint(err, "sys/leader");
        });
      if (lead.body.is_self === false) {
        throw new NoActiveNodeError(`${found.addr} reported active but sys/leader says the leader is ${lead.body.leader_address ?? "unknown"}; leadership is changing`, {
          electing: true,
        });
      }
      return { found, lead };
    },
  });
  const leader = client.forNode(found.addr);
  const active = found.health.find((h) => h.addr === found.addr);
  for (const h of found.health) {
    if (h.role !== "active" && h.role !== "standby") warnings.push(`node ${h.addr} is ${h.role}${h.error ? ` (${h.error})` : ""}`);
  }
  let peers: RaftServer[];
  try {
    peers = (await raftConfiguration(leader)).servers;
  } catch (err) {
    throw permissionHint(err, "sys/storage/raft/configuration");
  }
  if (!peers.length) throw new OperationError(`${found.addr} lists no raft peers: is it using Integrated Storage (raft)?`, { stage: "preflight" });
  if (!peers.some((p) => p.leader)) throw new OperationError(`raft configuration on ${found.addr} names no leader`, { stage: "preflight" });
  let autopilot: PreflightReport["autopilot"];
  try {
    const ap = await autopilotState(leader);
    autopilot = { healthy: ap.healthy, failureTolerance: ap.failure_tolerance };
    if (!ap.healthy) {
      const sick = Object.values(ap.servers ?? {})
        .filter((s) => !s.healthy)
        .map((s) => `${s.id} (${s.status})`);
      warnings.push(`autopilot reports the cluster unhealthy${sick.length ? `: ${sick.join(", ")}` : ""}; backing up anyway`);
    }
  } catch (err) {
    warnings.push(`autopilot state unavailable: ${err instanceof Error ? err.message : String(err)}`);
  }
  let seal: PreflightReport["seal"];
  try {
    const status = await sealStatus(leader);
    if (typeof status.type === "string" && typeof status.recovery_seal === "boolean") seal = { type: status.type, recoverySeal: status.recovery_seal };
    else warnings.push(`sys/seal-status on ${found.addr} reports no seal type; the manifest will not record the seal`);
  } catch (err) {
    warnings.push(`sys/seal-status unavailable on ${found.addr} (${err instanceof Error ? err.message : String(err)}); the manifest will not record the seal`);
  }
  for (const w of warnings) progress.warn(w);
  const product = active?.product;
  progress.info(`active node ${found.addr} (${product ? describeProduct(product, active?.version) : `version ${active?.version ?? "unknown"}`}), ${peers.length} raft peer(s)`);
  return {
    leaderAddr: found.addr,
    version: active?.version ?? "unknown",
    product,
    clusterId: active?.clusterId,
    seal,
    committedIndex: lead.body.raft_committed_index,
    peers,
    autopilot,
    nodes: found.health,
    warnings,
  };
}
