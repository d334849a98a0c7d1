import { ConfigError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import type { NodeHealth } from "../vault/operations.js";
import { raftConfiguration } from "../vault/raft-peers.js";

export function describeHealth(h: NodeHealth): string {
  const bits: string[] = [h.role];
  if (h.clusterId) bits.push(`cluster id ${h.clusterId}`);
  if (h.version) bits.push(`v${h.version}`);
  if (h.error) bits.push(h.error);
  return `${h.addr}: ${bits.join(", ")}`;
}

/** Normalises and checks the target list before anything else: URLs, no duplicates, at least one. */
export function normaliseNodes(nodes: string[], setting = "--nodes"): string[] {
  if (nodes.length === 0) throw new ConfigError(`no target nodes: give ${setting} URL[,URL...] (node 1 first)`, { field: "nodes" });
  const out = nodes.map((n) => {
    let u: URL;
    try {
      u = new URL(n.trim());
    } catch {
      throw new ConfigError(`target node '${n}' is not a URL; use e.g. https://vault-0:8200`, { field: "nodes" });
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new ConfigError(`target node '${n}' must start with http:// or https://`, { field: "nodes" });
    return u.origin;
  });
  const dup = out.find((n, i) => out.indexOf(n) !== i);
  if (dup) throw new ConfigError(`target node ${dup} is listed twice in ${setting}`, { field: "nodes" });
  return out;
}

interface HaStatusNode {
  api_address?: string;
  cluster_address?: string;
}

/** Raft node id of each API address, from `sys/ha-status` (cluster address) joined to the raft configuration. */
export async function nodeIdsByAddr(client: VaultClient): Promise<Map<string, { nodeId: string; voter: boolean }>> {
  const out = new Map<string, { nodeId: string; voter: boolean }>();
  const [config, ha] = await Promise.all([raftConfiguration(client), client.get<{ nodes?: HaStatusNode[] }>("sys/ha-status").then((r) => r.body.nodes ?? [])]);
  const hostPort = (a: string) => {
    try {
      return new URL(a).host;
    } catch {
      return a;
    }
  };
  for (const n of ha) {
    if (!n.api_address || !n.cluster_address) continue;
    const server = config.servers.find((s) => s.address === hostPort(n.cluster_address!));
    if (server) out.set(new URL(n.api_address).origin, { nodeId: server.node_id, voter: server.voter });
  }
  return out;
}
