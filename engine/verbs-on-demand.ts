// The public entry's restore, drill and recover: each loads its folder on first call. Every vrb
// command imports the engine's public entry, and these three bring ~40 modules of their own
// (throwaway nodes, the staged restore's steps, secret I/O) that a backup, a listing or a status
// check never runs: loading them with the entry cost every command ~20 ms of start-up before its
// first request (docs/architecture.md#start-up). Same names, options, reports and errors as the
// functions they call.
import type { DrillOptions, DrillReport } from "./drill/drill.js";
import type { RecoverOptions, RecoverReport } from "./recover/recover.js";
import type { RestoreOptions, RestoreReport } from "./restore/restore.js";

/**
 * Staged restore of a snapshot into a cluster: `rebuild` (empty nodes become the snapshot's
 * cluster) or `in-place` (a live cluster rolls back). engine/restore/restore.ts has the contract.
 */
export async function stagedRestore(opts: RestoreOptions): Promise<RestoreReport> {
  return (await import("./restore/restore.js")).stagedRestore(opts);
}

/** A restore rehearsal in a throwaway local cluster, torn down afterwards (engine/drill/drill.ts). */
export async function runDrill(opts: DrillOptions): Promise<DrillReport> {
  return (await import("./drill/drill.js")).runDrill(opts);
}

/** Single secrets and policies brought back from a snapshot through a throwaway node (engine/recover/recover.ts). */
export async function recoverSecrets(opts: RecoverOptions): Promise<RecoverReport> {
  return (await import("./recover/recover.js")).recoverSecrets(opts);
}
