import { ConfigError, OperationError } from "../errors.js";
import type { SnapshotManifest } from "../snapshot/manifest.js";
import type { VaultClient } from "../vault/client.js";
import { nodeHealth, sealStatus, type NodeHealth, type SealStatus } from "../vault/operations.js";
import { compareVersions, productOfManifest, productProfile } from "../vault/product.js";
import type { SealPlan } from "./seal.js";
import type { RestoreSettingNames } from "./setting-names.js";
import { describeHealth } from "./target-health.js";

/** What one target reports, read without a token: sys/health, sys/seal-status, sys/leader. */
export interface TargetFacts {
  addr: string;
  /** Position in --nodes, 1 for node 1. */
  n: number;
  health: NodeHealth;
  seal?: SealStatus;
  leader?: { isSelf: boolean; leaderAddress?: string; appliedIndex?: number };
  /**
   * uninitialized | sealed | active | standby, from seal-status where sys/health fails: a node
   * that just took a snapshot answers sys/health with 500 until it is reloaded or unsealed.
   * "unsettled": unsealed per seal-status, but sys/health fails (an auto-unseal node 1 that holds
   * the applied snapshot and the throwaway cluster's keys in memory), or unsealed per sys/health
   * but without a cluster id (a Vault node 1 sealing itself after taking the snapshot).
   */
  state: "unreachable" | "uninitialized" | "sealed" | "active" | "standby" | "unsettled";
  clusterId?: string;
}

/** Every target's facts; refuses unreachable targets and versions older than the snapshot's (nothing changed). */
export async function surveyTargets(client: VaultClient, nodes: string[], snapshotVersion: string): Promise<TargetFacts[]> {
  const facts = await Promise.all(nodes.map((addr, i) => factsOf(client.forNode(addr), addr, i + 1)));
  const unreachable = facts.filter((f) => f.state === "unreachable");
  if (unreachable.length) {
    throw new OperationError(`cannot reach ${unreachable.length} target node(s): ${unreachable.map((f) => describeHealth(f.health)).join("; ")}; start them and run again`, {
      stage: "preflight",
    });
  }
  const older = facts.filter((f) => compareVersions(f.health.version ?? f.seal?.version, snapshotVersion) < 0);
  if (older.length) {
    throw new ConfigError(
      `target node(s) older than the snapshot's version ${snapshotVersion}: ${older.map((f) => describeHealth(f.health)).join("; ")}; upgrade them first (a snapshot cannot be restored into an older version)`,
      { field: "nodes", stage: "preflight" },
    );
  }
  return facts;
}

async function factsOf(c: VaultClient, addr: string, n: number): Promise<TargetFacts> {
  const [health, seal, leader] = await Promise.all([
    nodeHealth(c),
    sealStatus(c).catch(() => undefined),
    c
      .get<{ is_self?: boolean; leader_address?: string; raft_applied_index?: number; raft_committed_index?: number }>("sys/leader", { anonymous: true, timeoutMs: 5_000 })
      .then((r) => ({ isSelf: Boolean(r.body.is_self), leaderAddress: r.body.leader_address || undefined, appliedIndex: r.body.raft_applied_index ?? r.body.raft_committed_index }))
      .catch(() => undefined),
  ]);
  return { addr, n, health, seal, leader, state: stateOf(health, seal), clusterId: seal?.cluster_id || health.clusterId };
}

/**
 * What a node is, from both of its unauthenticated answers. HashiCorp Vault 1.21, sealing itself
 * after taking a snapshot (the run that sent it killed a moment before), answers sys/health as an
 * unsealed standby with no cluster id for a few seconds, while seal-status hangs or already says
 * sealed. Taken for a standby of another cluster, node 1 was refused instead of being waited for,
 * unsealed with the original keys and checked. So seal-status's "sealed" wins, and an unsealed
 * node without a cluster id (which a settled one always has) is between two states.
 */
function stateOf(health: NodeHealth, seal: SealStatus | undefined): TargetFacts["state"] {
  if (seal?.initialized && seal.sealed) return "sealed";
  if (health.role === "active" || health.role === "standby") return health.clusterId || seal?.cluster_id ? health.role : "unsettled";
  if (health.role !== "unreachable") return health.role;
  if (!seal) return "unreachable";
  return seal.initialized ? "unsettled" : "uninitialized";
}

/**
 * Whether node 1 may be the node 1 of a Shamir rebuild that took the snapshot moments ago and is
 * still applying it (it seals itself once done): unsealed but not answering sys/health, or active
 * as a cluster that is not the snapshot's with the throwaway keyring's shape (as many shares as
 * the original keys given, all of them needed) while every other node is still empty. Another
 * cluster's node has another shape, and is not waited for.
 */
export function mayStillBeApplying(facts: readonly TargetFacts[], manifest: SnapshotManifest, keys: number): boolean {
  const [first, ...rest] = facts;
  if (!first) return false;
  if (first.state === "unsettled") return true;
  const want = manifest.vault.clusterId;
  const throwawayShape = first.seal?.t === keys && first.seal?.n === keys;
  return first.state === "active" && want !== undefined && first.clusterId !== want && throwawayShape && rest.every((f) => f.state === "uninitialized");
}

/**
 * How a re-run continues a rebuild that was interrupted. node1: "unseal" (it holds something
 * sealed: the original keys, or its seal after a restart, must open it, then it is checked),
 * "reload" (auto-unseal: it holds the applied snapshot but not yet the restored keys), "serving"
 * (it is the snapshot's cluster's active node). The other nodes are left alone (already standbys
 * of node 1), unsealed (Shamir: joined before the interruption, still sealed) or joined (empty).
 */
export interface ResumePlan {
  node1: "unseal" | "reload" | "serving";
  joined: string[];
  unseal: string[];
  join: string[];
  /** What was found on each node and what will be done, one line each. */
  lines: string[];
}

const WIPE = "wipe them (stop, delete the raft data directory, start; local environment: vrb local stop-node <id> --wipe && vrb local start-node <id>)";

function refusal(found: string, why: string, names: RestoreSettingNames): ConfigError {
  return new ConfigError(
    `refusing to rebuild onto nodes that are initialised and may hold data: ${found}. ${why} ` +
      `A rebuild needs empty, uninitialised nodes, or the nodes of a rebuild of this same snapshot that was interrupted: ${WIPE}, ` +
      `or roll back a live cluster with ${names.inPlace} (add ${names.force} for a snapshot of another cluster). Nothing was changed.`,
    { field: "nodes", stage: "preflight" },
  );
}

function describe(f: TargetFacts): string {
  const bits: string[] = [f.state === "unsettled" ? "unsealed (sys/health not answering yet)" : f.state];
  if (f.clusterId) bits.push(`cluster id ${f.clusterId}`);
  if (f.leader?.appliedIndex !== undefined) bits.push(`raft index ${f.leader.appliedIndex}`);
  if (f.health.version ?? f.seal?.version) bits.push(`v${f.health.version ?? f.seal?.version}`);
  return `node ${f.n} ${f.addr}: ${bits.join(", ")}`;
}

/**
 * Decides, from what the targets report and before anything changes, whether this is a fresh
 * rebuild (every target uninitialised: undefined), the re-run of an interrupted rebuild of this
 * snapshot (a plan), or a refusal: a node of another cluster, one at an older raft index than the
 * snapshot's, a node 2..N leading or following something else, or nothing left to do (which is
 * also what the live cluster the snapshot came from looks like).
 */
export function planResume(facts: TargetFacts[], manifest: SnapshotManifest, seal: SealPlan, can: { unsealAuto: boolean }, names: RestoreSettingNames): ResumePlan | undefined {
  const [first, ...rest] = facts;
  if (!first) throw new ConfigError("no target nodes", { field: "nodes" });
  const initialised = facts.filter((f) => f.state !== "uninitialized");
  if (initialised.length === 0) return undefined;
  const all = initialised.map(describe).join("; ");
  if (first.state === "uninitialized") {
    throw refusal(all, "Node 1 is empty, so there is no interrupted rebuild to continue (node 1 is always restored first).", names);
  }
  const want = manifest.vault.clusterId;
  const snapIndex = manifest.raft.index;
  const lines: string[] = [];
  let node1: ResumePlan["node1"];
  if (first.state === "sealed") {
    if (seal.kind === "auto" && !can.unsealAuto) {
      throw refusal(all, `Node 1 is sealed; opening it needs the recovery keys (${names.recoveryKeys}) or ${names.restartCommand}.`, names);
    }
    node1 = "unseal";
    lines.push(
      `${describe(first)}: sealed, as a node is after taking the snapshot; ${seal.kind === "shamir" ? "unseal it with the original unseal keys" : "open it"}, then check it holds the snapshot's cluster (${want ?? "cluster id not recorded"}) at raft index >= ${snapIndex}`,
    );
  } else {
    if (!want || first.clusterId !== want) {
      throw refusal(
        all,
        want
          ? `Node 1 holds cluster ${first.clusterId ?? "(unknown)"}, not the snapshot's (${want}): another cluster, or the throwaway keyring of a rebuild interrupted before the snapshot was applied.`
          : "The snapshot's manifest does not record its cluster id, so what node 1 holds cannot be told apart from another cluster.",
        names,
      );
    }
    if ((first.leader?.appliedIndex ?? 0) < snapIndex) {
      throw refusal(all, `Node 1 is at raft index ${first.leader?.appliedIndex ?? "?"}, older than the snapshot's ${snapIndex}: it holds an older state of the cluster.`, names);
    }
    if (first.state === "standby") throw refusal(all, "Node 1 is a standby: it follows another leader, which a rebuild never sets up.", names);
    const followers = rest.filter((f) => f.state === "standby" && f.clusterId === want);
    if (first.state === "unsettled" && seal.kind === "shamir") throw refusal(all, "Node 1 is unsealed but does not answer sys/health with its cluster.", names);
    // Auto-unseal: until a node has joined, node 1 may not have reloaded yet; reloading twice does no harm.
    node1 = seal.kind === "auto" && (first.state === "unsettled" || followers.length === 0) ? "reload" : "serving";
    if (node1 === "reload" && !can.unsealAuto) {
      throw refusal(all, `Node 1 holds the applied snapshot but must reload the restored keys; that needs a token, generate-root or ${names.restartCommand}.`, names);
    }
    lines.push(
      `${describe(first)}: holds the snapshot's cluster at raft index >= ${snapIndex}; ` +
        (node1 === "reload" ? "make it load the restored keys, then join the others" : "leave it as it is, continue with the other nodes"),
    );
  }
  const plan: ResumePlan = { node1, joined: [], unseal: [], join: [], lines };
  const leaderAddr = first.leader?.isSelf ? first.leader.leaderAddress : undefined;
  for (const f of rest) {
    if (f.state === "uninitialized") {
      plan.join.push(f.addr);
      lines.push(`${describe(f)}: empty; join it to node 1${seal.kind === "shamir" ? " and unseal it" : ""}`);
    } else if (f.state === "standby" && want && f.clusterId === want && node1 === "serving" && leaderAddr && f.leader?.leaderAddress === leaderAddr) {
      plan.joined.push(f.addr);
      lines.push(`${describe(f)}: already a standby of node 1; left alone`);
    } else if (f.state === "sealed" && seal.kind === "shamir") {
      plan.unseal.push(f.addr);
      lines.push(`${describe(f)}: sealed, as a node is after joining; unseal it with the original keys, then check it is a standby of node 1`);
    } else {
      throw refusal(all, `Node ${f.n} (${f.addr}) is ${f.state} and not a member of node 1's cluster: a rebuild of this snapshot cannot have left it so.`, names);
    }
  }
  if (node1 === "serving" && plan.join.length === 0 && plan.unseal.length === 0) {
    throw refusal(
      all,
      `Every target already serves the snapshot's cluster: a rebuild into them has finished (or was interrupted during its proof: check it with ` +
        `'${productProfile(productOfManifest(manifest.vault)).tool} operator raft list-peers -address=${first.addr}' and the canaries), or this is the live cluster the snapshot came from.`,
      names,
    );
  }
  return plan;
}

/** After node 1 was opened: it must hold the snapshot's cluster at or past the snapshot's raft index, else exit 2. */
export function checkHoldsSnapshot(f: Pick<TargetFacts, "addr" | "clusterId" | "leader">, manifest: SnapshotManifest, names: RestoreSettingNames): void {
  const want = manifest.vault.clusterId;
  const idx = f.leader?.appliedIndex ?? 0;
  if (want && f.clusterId === want && idx >= manifest.raft.index) return;
  throw new ConfigError(
    `node 1 (${f.addr}) was sealed and is now open, but holds ${f.clusterId && f.clusterId !== want ? `cluster ${f.clusterId}, not the snapshot's (${want ?? "not recorded"})` : `raft index ${idx}, older than the snapshot's ${manifest.raft.index}`}: ` +
      `not this snapshot. Nothing else was changed; ${WIPE.replace("them", "it")} and ${names.rerun}.`,
    { field: "nodes", stage: "preflight" },
  );
}

/** Re-reads one target's facts (after node 1 was opened). */
export async function targetFacts(client: VaultClient, addr: string, n: number): Promise<TargetFacts> {
  return factsOf(client.forNode(addr), addr, n);
}
