import { appliedIndex, nodeHealth, type NodeRole } from "../engine/vault/operations.js";
import { autopilotState, raftConfiguration } from "../engine/vault/raft-peers.js";
import { describeProduct, type Product } from "../engine/vault/product.js";
import { nodeRunning } from "../engine/throwaway/nodes.js";
import { DEFAULT_LOCAL_SHAPE, localVaultClient, type LocalEnvironment, type LocalShape } from "./environment.js";
import { s3ServerRunning, type S3ServerKind } from "./s3server.js";
import { transitSealServerRunning } from "./transit.js";

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
  /** Which server the nodes run. */
  product: Product;
  shape: LocalShape;
  /** The transit seal server (no tokens). */
  transitSeal?: { address: string; mountPath: string; keyName: string; pid?: number; running: boolean; shared: boolean; logPath: string };
  /** The CA certificate clients trust (TLS). */
  caCertPath?: string;
  nodes: NodeStatus[];
  s3?: { kind: S3ServerKind; endpoint: string; running: boolean; bucket?: string };
  autopilot?: { healthy: boolean; failureTolerance: number };
}

export async function localStatus(state: LocalEnvironment): Promise<LocalStatus> {
  const client = localVaultClient(state, { token: state.keys?.rootToken, retries: 0 });
  try {
    const nodes: NodeStatus[] = await Promise.all(
      state.nodes.map(async (n) => {
        const c = client.forNode(n.apiAddr);
        const h = await nodeHealth(c);
        const raftIndex = h.role === "active" || h.role === "standby" ? await appliedIndex(c).catch(() => undefined) : undefined;
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
    const ts = state.transitSeal;
    return {
      dir: state.dir,
      product: state.product ?? "openbao",
      shape: state.shape,
      transitSeal: ts
        ? {
            address: ts.address,
            mountPath: ts.mountPath,
            keyName: ts.keyName,
            pid: ts.pid,
            running: transitSealServerRunning(ts),
            shared: state.transitSealShared === true,
            logPath: ts.logPath,
          }
        : undefined,
      caCertPath: state.tls?.caCertPath,
      nodes,
      s3: state.s3 ? { kind: state.s3.kind, endpoint: state.s3.endpoint, running: s3ServerRunning(state.s3), bucket: state.bucket } : undefined,
      autopilot,
    };
  } finally {
    await client.close();
  }
}

export function formatStatus(status: LocalStatus): string {
  const version = status.nodes.find((n) => n.version)?.version;
  const lines = [`local environment: ${status.dir}`, `  product: ${describeProduct(status.product ?? "openbao", version)}`];
  const shape = status.shape ?? DEFAULT_LOCAL_SHAPE;
  const shapeBits = [`seal ${shape.seal}`, shape.tls ? "TLS" : "plain HTTP"];
  if (shape.unauthedGenerateRoot) shapeBits.push("unauthenticated generate-root ENABLED (non-default)");
  lines.push(`  shape: ${shapeBits.join(", ")}`);
  if (status.caCertPath) lines.push(`  CA certificate: ${status.caCertPath}`);
  if (status.transitSeal) {
    const t = status.transitSeal;
    lines.push(
      `  transit seal server: ${t.address} ${t.running ? `running, pid ${t.pid}` : "not running"}, key ${t.keyName} on ${t.mountPath}` +
        `${t.shared ? " (shared, not stopped by down)" : ""}, log ${t.logPath}`,
    );
  }
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
