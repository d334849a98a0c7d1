import { ConfigError, IntegrityError, InterruptedError, OperationError, VrbError, interruption, messageOf } from "../errors.js";
import { nodeHealth } from "../vault/operations.js";
import { anotherSnapshotAdvice } from "./another-snapshot.js";
import type { Phase, RestoreRun } from "./restore-run.js";
import { describeHealth } from "./target-health.js";

/**
 * The error of a restore that failed part-way, or was interrupted (its signal aborted): what went
 * wrong, what state every node is in now, and the command to run next, chosen from the phase the
 * restore had reached and node 1's actual state. The partial report rides along (`restoreReportOf`).
 */
export async function restoreFailure(run: RestoreRun, caught: unknown): Promise<VrbError> {
  // Whatever broke once the signal had aborted (a cancelled request, say) broke because of it.
  const signal = run.opts.signal;
  const err = !(caught instanceof InterruptedError) && signal?.aborted ? interruptedWith(signal, caught) : caught;
  const report = run.report(false);
  const health = await Promise.all(run.nodes.map((n) => nodeHealth(run.client.forNode(n))));
  const states = health.map((h) => `  ${describeHealth(h)}`).join("\n");
  const n1 = run.nodes[0]!;
  const auto = run.seal?.kind === "auto";
  // A node the restore was still waiting on may have become a standby meanwhile: it is joined.
  const rest = run.nodes.slice(1).filter((n, i) => !run.joined.includes(n) && health[i + 1]?.role !== "standby");
  const joinOne = (n: string) =>
    auto
      ? `${run.cli} operator raft join ${run.baoTarget(n)} ${n1} (it unseals itself with its ${run.seal?.type} seal)`
      : `${run.cli} operator raft join ${run.baoTarget(n)} ${n1} && ${run.cli} operator unseal ${run.baoTarget(n)} (repeat to the threshold)`;
  const joinCmds = rest.map(joinOne).join("; ");
  // A Shamir node 1 still applying the snapshot: active as the throwaway cluster until it seals itself.
  const want = run.manifest?.vault.clusterId;
  const applying = !auto && health[0]?.role === "active" && want !== undefined && health[0]?.clusterId !== want;
  const wipe = `stop it, delete its raft data directory, start it (local environment: vrb local stop-node <id> --wipe && vrb local start-node <id>)`;
  const rerun = run.names.rerun;
  const next: Record<Phase, string> = {
    preflight: err instanceof InterruptedError ? `nothing was changed on any node; ${rerun}.` : `nothing was changed on any node; fix the cause above and ${rerun}.`,
    initialised: `${n1} was initialised with a throwaway keyring and holds none of the snapshot's data: ${wipe}, then ${rerun}.`,
    restored: auto
      ? `${n1} holds the restored snapshot; ${rerun} (with a token, or ${run.names.restartCommand}): it continues from there. If it is sealed, its seal cannot open the snapshot's keyring: configure the targets with the original cluster's seal key, ` +
        `wipe ${n1} (${wipe}) and ${rerun}. If it is active, it still holds the throwaway cluster's keys in memory: restart its server ` +
        `(it unseals itself with its ${run.seal?.type} seal and loads the restored keys), or seal it with a token of the original cluster ` +
        `(${run.cli} operator seal ${run.baoTarget(n1)}) and unseal it with the recovery keys (${run.cli} operator unseal ${run.baoTarget(n1)}, to the threshold)` +
        (rest.length ? `; then join the others one at a time: ${joinCmds}` : "") +
        "."
      : `${n1} ${applying ? "took the snapshot and is still applying it (until then it answers as the throwaway cluster; then it seals itself). Once it is sealed, unseal" : "holds the restored snapshot. Unseal"} it with the ORIGINAL cluster's keys (${run.cli} operator unseal ${run.baoTarget(n1)}, to the threshold)` +
        (rest.length ? `, then join the others one at a time: ${joinCmds}` : "") +
        `. Or ${rerun}: it continues from there.`,
    joining:
      `${n1} serves the restored data. ` +
      (rest.length ? `Not yet joined: ${rest.join(", ")}; ${rerun} (it continues with them), or for each: ${joinCmds}. ` : "") +
      `Then check: ${run.cli} operator raft list-peers ${run.baoTarget(n1)}.`,
    verifying: `every node has been restored, but the proof failed; inspect ${run.cli} operator raft list-peers and ${run.cli} operator raft autopilot state on ${n1} (it may still be converging).`,
    "restore-sent": `the restore was sent to the active node; check ${run.cli} operator raft list-peers and the canaries, unseal any sealed node with the snapshot's keys, then ${rerun} if the data is not the snapshot's.`,
  };
  const tokenNote = run.generatedToken ? `\nA generated root token could not be revoked: revoke it with '${run.cli} token revoke -accessor ${run.generatedTokenAccessor}'.` : "";
  // Node 1 may already be unsealed and serving (e.g. a later step failed): advise from what it is now.
  // Not so an auto-unseal node 1: active right after the restore, it holds the throwaway keys until
  // reloaded. Nor a Shamir node 1 still applying the snapshot.
  const n1Serving = ["active", "standby"].includes(health[0]?.role ?? "") && !applying;
  // A snapshot that failed its integrity check fails it again: the advice names another one.
  const advice =
    run.phase === "preflight" && err instanceof IntegrityError ? await anotherSnapshotAdvice(run) : run.phase === "restored" && n1Serving && !auto ? next.joining : next[run.phase];
  const where = run.phase === "preflight" ? "preflight" : `phase '${run.phase}'`;
  const outcome = err instanceof InterruptedError ? "stopped" : "failed";
  const message = `restore (${run.opts.mode}) ${outcome} at ${where}: ${messageOf(err)}\nnodes now:\n${states}\nnext: ${advice}${tokenNote}`;
  const stage = err instanceof VrbError ? err.stage : undefined;
  const out: VrbError =
    err instanceof InterruptedError
      ? new InterruptedError(message, { signal: err.signal, stage, cause: err })
      : err instanceof ConfigError
        ? new ConfigError(message, { field: err.field, stage, cause: err })
        : err instanceof IntegrityError
          ? new IntegrityError(message, { stage, cause: err })
          : new OperationError(message, { stage, cause: err });
  return Object.assign(out, { report });
}

/** An error that came after the interruption, as the interruption it was caused by. */
function interruptedWith(signal: AbortSignal, caught: unknown): InterruptedError {
  const stopped = interruption(signal);
  return new InterruptedError(`${stopped.message}: ${messageOf(caught)}`, { signal: stopped.signal, stage: caught instanceof VrbError ? caught.stage : undefined, cause: caught });
}
