import { OperationError } from "../errors.js";
import { waitFor } from "../wait.js";
import type { VaultClient } from "./client.js";

// The raft peer set and autopilot's view of it: who is a voter, whether the cluster is healthy, and
// the calls that change the set (join, remove-peer, autopilot configuration).

export async function joinRaft(client: VaultClient, leaderApiAddr: string, leaderCaCert?: string): Promise<void> {
  const body: Record<string, unknown> = { leader_api_addr: leaderApiAddr };
  if (leaderCaCert) body.leader_ca_cert = leaderCaCert;
  const res = await client.post<{ joined: boolean }>("sys/storage/raft/join", body, { anonymous: true });
  if (!res.body?.joined) throw new OperationError(`${client.addr} did not join the raft cluster at ${leaderApiAddr}`);
}

export interface RaftServer {
  node_id: string;
  address: string;
  leader: boolean;
  voter: boolean;
  protocol_version?: string;
}

export async function raftConfiguration(client: VaultClient): Promise<{ servers: RaftServer[]; index: number }> {
  const res = await client.get<{ data: { config: { servers: RaftServer[]; index: number } } }>("sys/storage/raft/configuration");
  return res.body.data.config;
}

export interface AutopilotServer {
  id: string;
  address: string;
  node_status: string;
  healthy: boolean;
  status: string;
  last_index: number;
  last_term: number;
  version?: string;
}

export interface AutopilotState {
  healthy: boolean;
  failure_tolerance: number;
  leader: string;
  voters: string[];
  servers: Record<string, AutopilotServer>;
}

export async function autopilotState(client: VaultClient): Promise<AutopilotState> {
  const res = await client.get<{ data: AutopilotState }>("sys/storage/raft/autopilot/state");
  return res.body.data;
}

export interface AutopilotConfig {
  cleanup_dead_servers?: boolean;
  dead_server_last_contact_threshold?: string;
  last_contact_threshold?: string;
  max_trailing_logs?: number;
  min_quorum?: number;
  server_stabilization_time?: string;
}

export async function setAutopilotConfig(client: VaultClient, config: AutopilotConfig): Promise<void> {
  await client.post("sys/storage/raft/autopilot/configuration", config, { idempotent: true });
}

export async function removePeer(client: VaultClient, serverId: string): Promise<void> {
  await client.post("sys/storage/raft/remove-peer", { server_id: serverId }, { idempotent: true });
}

/**
 * One line on what autopilot sees, for a wait that timed out: which condition failed and which
 * server it blames ("healthy false, failure tolerance 0; node-3 non-voter unhealthy (last index 40, term 3)").
 */
export function describeAutopilot(ap: AutopilotState): string {
  const servers = Object.values(ap.servers ?? {}).map(
    (s) => `${s.id} ${s.status}${s.healthy ? "" : " unhealthy"} (${s.node_status}, last index ${s.last_index}, term ${s.last_term})`,
  );
  return `autopilot healthy ${ap.healthy}, failure tolerance ${ap.failure_tolerance}, leader ${ap.leader}, voters [${(ap.voters ?? []).join(", ")}]; ${servers.join("; ")}`;
}

/** One line on the raft configuration, for a wait that timed out. */
export function describeRaftServers(servers: RaftServer[]): string {
  return `raft configuration: ${servers.map((s) => `${s.node_id} ${s.voter ? "voter" : "non-voter"}${s.leader ? " leader" : ""}`).join(", ")}`;
}

/**
 * One look at a cluster's voters and, once `expected` of them are in the raft configuration, at
 * autopilot (asked only then: it is the slower call). `describe` gets a line on the last answer, for
 * the message of a wait that runs out.
 */
export async function votersAndAutopilot(client: VaultClient, expected: number, describe: (seen: string) => void): Promise<{ servers: RaftServer[]; autopilot?: AutopilotState }> {
  const { servers } = await raftConfiguration(client);
  describe(describeRaftServers(servers));
  if (servers.filter((s) => s.voter).length < expected) return { servers };
  const autopilot = await autopilotState(client);
  describe(describeAutopilot(autopilot));
  return { servers, autopilot };
}

/** Waits until `expected` servers are raft voters and autopilot calls the cluster healthy. */
export async function waitForHealthyVoters(client: VaultClient, expected: number, timeoutMs: number): Promise<{ servers: RaftServer[]; autopilot: AutopilotState }> {
  let seen: string | undefined;
  return waitFor(
    async () => {
      const { servers, autopilot } = await votersAndAutopilot(client, expected, (s) => (seen = s));
      return autopilot?.healthy && autopilot.voters.length >= expected ? { servers, autopilot } : undefined;
    },
    { what: `${expected} raft voters with healthy autopilot`, timeoutMs, intervalMs: 500, lastSeen: () => seen },
  );
}
