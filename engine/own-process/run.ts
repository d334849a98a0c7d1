// Engine work in a Node process of its own, started with the heap settings a streamed pass needs
// (engine/bounded-heap.ts): a backup, a deep check of a stored snapshot, a staged restore. For
// callers that live in a Node they did not start: the Pulumi providers run inside Pulumi's
// dynamic-provider host, whose default heap ran a 1 GiB backup with
// 2-118 full collections that freed nothing (CPU and peak RSS in docs/benchmarks.md, "The Pulumi
// provider's backup process"). NODE_OPTIONS cannot carry the old generation's flag, and a worker
// thread's resourceLimits have no such setting either.
//
// The request travels over the IPC channel, never on the command line or in the environment (it
// may hold a token or login material). The child's progress lines go to this process's stderr.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { RecordedBackup } from "../backup/recorded-backup.js";
import type { SnapshotHealth } from "../catalogue/check.js";
import { BOUNDED_HEAP_FLAGS } from "../bounded-heap.js";
import { onClosedOutput } from "../closed-output.js";
import { OperationError } from "../errors.js";
import type { RestoreReport } from "../restore/restore-run.js";
import {
  recordedBackupFromWire,
  type OwnProcessRequest,
  type RecordedBackupRequest,
  type RecordedRestoreRequest,
  type StoredSnapshotCheckRequest,
  type WireResults,
} from "./requests.js";
import { fromWire, type WireError } from "./wire.js";

/**
 * The child's one message: its answer, or the error it failed with. `outputClosed`: the stderr both
 * processes share met a closed pipe (the reader, Pulumi's engine, is gone).
 */
export type OwnProcessAnswer = ({ ok: true; result: WireResults[OwnProcessRequest["operation"]] } | { ok: false; error: WireError }) & { outputClosed?: boolean };

/** What every request carries besides its operation. */
export interface OwnProcessOptions {
  /** The prefix of the child's progress lines on stderr (e.g. the provider's resource type). */
  progressPrefix: string;
  /** Stops the child's work as an interruption (SIGTERM: a backup's upload aborted, no manifest); the call then rejects with its error. */
  signal?: AbortSignal;
}

const CHILD_MAIN = "./main.js";

/**
 * Runs `request` in a child Node started with BOUNDED_HEAP_FLAGS and resolves with its answer, or
 * rejects with its error as the same kind of engine error. When this process ends first, the
 * child's channel closes and it stops the work as an interruption (a backup's upload aborted, no
 * manifest, the failure recorded).
 */
function runInOwnProcess<K extends OwnProcessRequest["operation"]>(request: OwnProcessRequest & { operation: K }, opts: OwnProcessOptions): Promise<WireResults[K]> {
  const main = fileURLToPath(new URL(CHILD_MAIN, import.meta.url));
  return new Promise((resolve, reject) => {
    let answer: OwnProcessAnswer | undefined;
    // stdout too goes to stderr: a provider's stdout belongs to its host's protocol.
    const child = spawn(process.execPath, [...BOUNDED_HEAP_FLAGS, main], { stdio: ["ignore", 2, 2, "ipc"], serialization: "advanced" });
    child.on("message", (m: OwnProcessAnswer) => (answer = m));
    child.on("error", (err) => reject(new OperationError(`could not start a Node process for the ${request.operation} (${process.execPath} ${main}): ${err.message}`)));
    // 'close', not 'exit': it comes after the IPC channel is drained, so the answer is in.
    child.on("close", (code, signal) => {
      if (!answer) reject(new OperationError(`the ${request.operation}'s process ended (${signal ?? `exit status ${code}`}) before it answered; see the lines above`));
      else if (answer.ok) resolve(answer.result as WireResults[K]);
      else reject(fromWire(answer.error));
      // The child's stderr is this process's: closed for it, closed here. Whoever read it (Pulumi's
      // engine) is gone and can no longer call this process; an orphaned provider host would idle
      // on forever (or, at its next write, spin in Pulumi's own error logging). End it once the
      // answer has been handed on.
      if (answer?.outputClosed) setImmediate(() => process.exit(1));
    });
    const stop = () => child.kill("SIGTERM");
    opts.signal?.addEventListener("abort", stop, { once: true });
    child.once("close", () => opts.signal?.removeEventListener("abort", stop));
    if (opts.signal?.aborted) stop();
    // A child that could not start fails through 'error' above; the callback keeps send from throwing.
    child.send({ request, progressPrefix: opts.progressPrefix }, (err) => err && child.kill());
  });
}

let endingOnClosedOutput = false;

/**
 * For a process whose output its parent reads and that nobody else can reach (Pulumi's
 * dynamic-provider host, read and called by the engine only): when the reader is killed, the
 * process lives on, orphaned, and its next write meets a closed pipe. Pulumi's host then logs that
 * error to the same pipe, which fails again: a loop at 100 % CPU that never ends. The process ends
 * instead; a child working for it stops at its next safe point (its channel closes). Idempotent.
 */
export function endProcessWhenOutputCloses(): void {
  if (endingOnClosedOutput) return;
  endingOnClosedOutput = true;
  onClosedOutput(() => process.exit(1));
}

/** runRecordedBackup (engine/backup/recorded-backup.ts) in a Node process of its own. */
export async function runRecordedBackupInProcess(request: RecordedBackupRequest & OwnProcessOptions): Promise<RecordedBackup> {
  const { progressPrefix, signal, ...options } = request;
  return recordedBackupFromWire(await runInOwnProcess({ operation: "backup", ...options }, { progressPrefix, signal }));
}

/** checkStoredSnapshot (engine/catalogue/check.ts) of a key in a destination's store, in a Node process of its own. */
export function checkStoredSnapshotInProcess(request: StoredSnapshotCheckRequest & OwnProcessOptions): Promise<SnapshotHealth> {
  const { progressPrefix, signal, ...check } = request;
  return runInOwnProcess({ operation: "check", ...check }, { progressPrefix, signal });
}

/** runRecordedStagedRestore (engine/restore/recorded-restore.ts) in a Node process of its own. */
export function runRecordedStagedRestoreInProcess(request: RecordedRestoreRequest & OwnProcessOptions): Promise<RestoreReport> {
  const { progressPrefix, signal, ...restore } = request;
  return runInOwnProcess({ operation: "restore", ...restore }, { progressPrefix, signal });
}
