import {
  ExitCode,
  InterruptedError,
  VrbError,
  exitCodeOf,
  exitCodeOfSignal,
  explainS3Error,
  messageOf,
  openStore,
  redact,
  stderrProgress,
  type BackupPolicy,
  type ObjectStore,
  type Progress,
  type StopSignal,
} from "../../engine/index.js";

/** Options every command shares. */
export interface GlobalOptions {
  json?: boolean;
  [option: string]: unknown;
}

/** The AWS SDK warns about Node 20 on every start; that is not news for the operator at 3 a.m. */
export function quietKnownWarnings(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

export function progressFor(_opts: GlobalOptions): Progress {
  return stderrProgress("vrb");
}

/** Prints the one JSON report of a `--json` run on stdout (redacted). */
export function printJson(report: unknown): void {
  process.stdout.write(redact(JSON.stringify(report, null, 2)) + "\n");
}

export function printText(text: string): void {
  process.stdout.write(redact(text) + "\n");
}

/**
 * Runs a command body and turns its outcome into the documented exit code. Errors are printed
 * (redacted) on stderr; with --json a `{ ok: false, error }` report goes to stdout as well.
 */
export async function runCommand(opts: GlobalOptions, body: () => Promise<ExitCode | void>): Promise<void> {
  try {
    const code = (await body()) ?? ExitCode.ok;
    process.exitCode = code;
  } catch (caught) {
    const err = explainS3Error(caught);
    const code = exitCodeOf(err);
    const stage = err instanceof VrbError && err.stage ? ` [stage: ${err.stage}]` : "";
    process.stderr.write(redact(`vrb: error${stage}: ${messageOf(err)}`) + "\n");
    if (process.env.VRB_DEBUG === "1" && err instanceof Error && err.stack) process.stderr.write(redact(err.stack) + "\n");
    if (opts.json) {
      printJson({
        ok: false,
        exitCode: code,
        error: { message: messageOf(err), stage: err instanceof VrbError ? err.stage : undefined, kind: err instanceof Error ? err.name : "Error" },
      });
    }
    process.exitCode = code;
  }
}

/** The signals that stop a command; each gives the shell's exit code for it (InterruptedError). */
const STOP_SIGNALS: readonly StopSignal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** How long an interrupted run that has already reported may still be held up by anything left over before the process ends anyway. */
const AFTER_INTERRUPT_MS = 5_000;

/**
 * runCommand for a command that stops cleanly when told to (Ctrl-C, a CI job cancelled, a pod
 * evicted): the first SIGINT, SIGTERM or SIGHUP aborts the `signal` handed to `body`, whose engine
 * operation stops at its next safe point, cleans up (temp files, throwaway nodes, unfinished
 * uploads), reports where things stand and fails with an InterruptedError; the exit code is the
 * shell's for the signal (SIGINT 130, SIGTERM 143, SIGHUP 129) whatever broke on the way. A second
 * signal during the clean-up ends the process at once, and says so.
 */
export async function runInterruptible(opts: GlobalOptions, body: (signal: AbortSignal) => Promise<ExitCode | void>): Promise<void> {
  const stop = new AbortController();
  let first: StopSignal | undefined;
  const onSignal = (received: NodeJS.Signals) => {
    const sig = received as StopSignal;
    if (!first) {
      first = sig;
      process.stderr.write(`vrb: ${sig} received: stopping at the next safe point and cleaning up (send it again to stop at once, without cleaning up)\n`);
      stop.abort(new InterruptedError(`interrupted (${sig})`, { signal: sig }));
      return;
    }
    process.stderr.write(`vrb: ${sig} again: stopping at once; the clean-up under way was not finished (the lines above say what was started)\n`);
    process.exit(exitCodeOfSignal(sig));
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    await runCommand(opts, () => body(stop.signal));
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
  if (!first || process.exitCode === ExitCode.ok) return;
  const code = exitCodeOfSignal(first);
  process.exitCode = code;
  // The run has cleaned up and reported; a request or timer nobody cancelled must not keep the
  // process (and the CI job or pod waiting on it) alive.
  setTimeout(() => process.exit(code), AFTER_INTERRUPT_MS).unref();
}

/**
 * The one way a command gets at its snapshots: the store of the policy's destination (whatever its
 * type), opened with the engine's openStore. The caller closes it (withPolicyStore does).
 */
export function openPolicyStore(policy: BackupPolicy): Promise<ObjectStore> {
  return openStore(policy.destination);
}

/** Runs `body` with the policy's store and closes the store afterwards, however `body` ends. */
export async function withPolicyStore<T>(policy: BackupPolicy, body: (store: ObjectStore) => Promise<T>): Promise<T> {
  const store = await openPolicyStore(policy);
  try {
    return await body(store);
  } finally {
    store.close();
  }
}
