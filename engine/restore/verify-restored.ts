import { OperationError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import { appliedIndex, nodeHealth } from "../vault/operations.js";
import { votersAndAutopilot } from "../vault/raft-peers.js";
import type { RestoreRun } from "./restore-run.js";
import { nodeIdsByAddr } from "./target-health.js";

/**
 * The proof that the restore worked. With a token: every node a voter, autopilot healthy with
 * failure tolerance floor((N-1)/2), raft index, canaries. Without one, what needs no token is
 * proven (one active node, the rest standbys, every node's applied index at or past the
 * snapshot's) and each check that needs a token is listed with the command to run it later.
 */
export async function verifyRestore(run: RestoreRun, client: VaultClient, expectedVoters = run.nodes.length): Promise<void> {
  await verifyHealthAndIndex(run, client);
  if (run.token === "none") {
    recordUnverified(run, client.addr);
    return;
  }
  await verifyVoters(run, client, expectedVoters);
  await addNodeIds(run, client);
  await verifyCanaries(run, client);
}

/** Token-free: sys/health of every node (one active, the rest standbys) and each node's applied index. */
async function verifyHealthAndIndex(run: RestoreRun, client: VaultClient): Promise<void> {
  const snapshotIndex = run.manifest!.raft.index;
  await run.log.run(
    "verify node health and raft index",
    undefined,
    async (clock) => {
      const seen = await clock.until(
        `one active node, ${run.nodes.length - 1} standby(s), every node at raft index >= ${snapshotIndex}`,
        async () => {
          const nodes = await Promise.all(
            run.nodes.map(async (addr) => {
              const c = client.forNode(addr);
              const h = await nodeHealth(c);
              const idx = h.role === "active" || h.role === "standby" ? await appliedIndex(c).catch(() => undefined) : undefined;
              return { addr, role: h.role, raftIndex: idx };
            }),
          );
          const active = nodes.filter((n) => n.role === "active").length;
          const standby = nodes.filter((n) => n.role === "standby").length;
          const behind = nodes.filter((n) => (n.raftIndex ?? -1) < snapshotIndex);
          return active === 1 && standby === run.nodes.length - 1 && behind.length === 0 ? nodes : undefined;
        },
        250,
      );
      run.nodeReports = seen;
      run.raftIndex = seen.find((n) => n.role === "active")?.raftIndex;
      if ((run.raftIndex ?? -1) < snapshotIndex) throw new OperationError(`raft index ${run.raftIndex} is below the snapshot's ${snapshotIndex}: the snapshot was not applied`);
      clock.detail = `1 active, ${seen.length - 1} standby(s); raft index ${Math.min(...seen.map((n) => n.raftIndex ?? 0))}..${run.raftIndex} >= snapshot's ${snapshotIndex}`;
      // Followers may still be installing the snapshot: the wait grows with it.
    },
    { sized: true },
  );
}

async function verifyVoters(run: RestoreRun, client: VaultClient, expectedVoters: number): Promise<void> {
  const tolerance = Math.floor((expectedVoters - 1) / 2);
  await run.log.run("verify voters and autopilot", client.addr, async (clock) => {
    let seen: string | undefined;
    const ap = await clock.until(
      `${expectedVoters} voters, autopilot healthy, failure tolerance ${tolerance}`,
      async () => {
        const { autopilot } = await votersAndAutopilot(client, expectedVoters, (s) => (seen = s));
        return autopilot?.healthy && autopilot.failure_tolerance >= tolerance ? autopilot : undefined;
      },
      250,
      { lastSeen: () => seen, status: async () => seen },
    );
    run.autopilot = { healthy: ap.healthy, failureTolerance: ap.failure_tolerance };
    clock.detail = `${ap.voters.length} voters, failure tolerance ${ap.failure_tolerance}`;
  });
}

async function addNodeIds(run: RestoreRun, client: VaultClient): Promise<void> {
  const ids = await nodeIdsByAddr(client).catch(() => new Map<string, { nodeId: string; voter: boolean }>());
  run.nodeReports = run.nodeReports.map((n) => {
    const id = ids.get(n.addr);
    return id ? { ...n, nodeId: id.nodeId, voter: id.voter } : n;
  });
}

async function verifyCanaries(run: RestoreRun, client: VaultClient): Promise<void> {
  const canaries = run.opts.canaries ?? [];
  if (canaries.length === 0) {
    run.log.skip("read canaries", "no canary paths configured");
    return;
  }
  await run.log.run("read canaries", client.addr, async (clock) => {
    run.canaries = await Promise.all(
      canaries.map(async (path) => ({
        path,
        ok: await client.get(path).then(
          () => true,
          () => false,
        ),
      })),
    );
    const bad = run.canaries.filter((c) => !c.ok).map((c) => c.path);
    if (bad.length) throw new OperationError(`canary path(s) not readable after the restore: ${bad.join(", ")}`);
    clock.detail = `${canaries.length} readable`;
  });
}

function recordUnverified(run: RestoreRun, leader: string): void {
  const why = "needs a token; none worked on the restored cluster";
  const target = run.baoTarget(leader);
  run.notVerified.push({
    check: "raft voters and autopilot health",
    why,
    command: run.withOriginalToken(`${run.cli} operator raft autopilot state ${target}`, `${run.cli} operator raft list-peers ${target}`),
  });
  for (const path of run.opts.canaries ?? []) {
    run.notVerified.push({ check: `canary ${path}`, why, command: run.withOriginalToken(`${run.cli} read ${target} ${path}`) });
  }
  for (const n of run.notVerified) run.log.skip(`verify ${n.check}`, `not verified: ${n.why}; later: ${n.command}`);
}
