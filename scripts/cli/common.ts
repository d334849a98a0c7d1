import {
  ExitCode,
  VrbError,
  exitCodeOf,
  explainS3Error,
  messageOf,
  openStore,
  redact,
  stderrProgress,
  type BackupPolicy,
  type ObjectStore,
  type Progress,
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
