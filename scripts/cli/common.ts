import {
  ConfigError,
  destinationContainerOf,
  destinationNamed,
  destinationsOf,
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
  STOP_SIGNALS,
  StoreNoAnswerError,
  type BackupPolicy,
  type ObjectStore,
  type Progress,
  type StopSignal,
  type StoreType,
} from "../../engine/index.js";

/** Options every command shares. */
export interface GlobalOptions {
  json?: boolean;
  [option: string]: unknown;
}

export { quietKnownWarnings } from "./launch.js";

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
  } finally {
    // The command has reported. A request that was given up on but not torn down (the Cloud
    // Storage SDK cannot cancel its calls to a store that stopped answering), or a timer nobody
    // cancelled, must not keep the process, and the CronJob, CI job or operator waiting on it, alive.
    setTimeout(() => process.exit(), LINGER_MS).unref();
  }
}

/** How long a finished command may still be held up by anything left over before the process ends anyway (with its exit code). */
const LINGER_MS = 5_000;

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
  // Whatever broke on the way, an interrupted run ends with the signal's code (runCommand's linger
  // timer ends the process with it, should anything be left over).
  if (first && process.exitCode !== ExitCode.ok) process.exitCode = exitCodeOfSignal(first);
}

/**
 * The one way a command gets at its snapshots: the store of the policy's destination named `name`
 * (`--destination`; the primary without one), whatever its type, opened with the engine's
 * openStore. An unknown name is a ConfigError listing the policy's names, before anything is read.
 * With copies in the policy, stderr says which destination is read: the same command's output
 * differs from one to the other. The caller closes the store (withPolicyStore does).
 */
export async function openPolicyStore(policy: BackupPolicy, name?: string): Promise<ObjectStore> {
  const named = destinationNamed(policy, name);
  const store = await openStore(named.destination, { name: named.name, onWaiting: (m) => process.stderr.write(redact(`vrb: warning: ${m}`) + "\n") });
  if (destinationsOf(policy).length > 1) process.stderr.write(`vrb: reading destination '${store.name}' (${store.url(store.prefix)})\n`);
  return store;
}

/** Runs `body` with the store of the policy's destination `name` (the primary by default) and closes it afterwards, however `body` ends. */
export async function withPolicyStore<T>(policy: BackupPolicy, body: (store: ObjectStore) => Promise<T>, name?: string): Promise<T> {
  const store = await openPolicyStore(policy, name);
  try {
    return await body(store);
  } finally {
    store.close();
  }
}

/** Which destination a report is about: its name, store type and URL (with its prefix). */
export interface DestinationOfReport {
  name: string;
  type: StoreType;
  url: string;
}

export function destinationOfReport(store: ObjectStore): DestinationOfReport {
  return { name: store.name, type: store.type, url: store.url(store.prefix) };
}

/** A store that remembers the errors its calls failed with, and what they say about the store answering. */
export interface WatchedStore {
  store: ObjectStore;
  /**
   * `err` itself, its message extended when the store did not answer (no connection, a 5xx, its
   * bucket, container or directory missing) and the policy has other destinations: which ones,
   * and the command that reads one.
   */
  explain(err: unknown): Promise<unknown>;
}

/** Node, undici and SDK codes of a request that got no answer at all. */
const NO_ANSWER_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "ESTALE",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_SOCKET",
  "REQUEST_SEND_ERROR",
]);

/** Answers that mean the bucket or container itself is gone (S3, Azure); other stores are asked with checkContainer. */
const NO_CONTAINER_CODES = new Set(["NoSuchBucket", "ContainerNotFound"]);

/** Whether a store error says the store did not answer: nothing came back, a 5xx came back, or its container is missing. */
function storeDidNotAnswer(err: unknown): boolean {
  const pending: unknown[] = [err];
  for (let i = 0; i < pending.length && i < 12; i++) {
    const e = pending[i] as
      | {
          name?: unknown;
          code?: unknown;
          Code?: unknown;
          statusCode?: unknown;
          $metadata?: { httpStatusCode?: number };
          details?: { errorCode?: unknown };
          cause?: unknown;
          errors?: unknown;
        }
      | undefined;
    if (!e || typeof e !== "object") continue;
    if (e instanceof StoreNoAnswerError) return true;
    const codes = [e.code, e.Code, e.name, e.details?.errorCode].filter((c): c is string => typeof c === "string");
    if (codes.some((c) => NO_ANSWER_CODES.has(c) || NO_CONTAINER_CODES.has(c)) || e.name === "TimeoutError") return true;
    const status = e.$metadata?.httpStatusCode ?? (typeof e.statusCode === "number" ? e.statusCode : typeof e.code === "number" ? e.code : undefined);
    // The store answered: only a server error counts as no answer.
    if (status !== undefined && status >= 100) return status >= 500;
    if (e.cause !== undefined) pending.push(e.cause);
    if (Array.isArray(e.errors)) pending.push(...(e.errors as unknown[]));
  }
  return false;
}

/** The destination's URL for a message; opening a store makes no request, and a store that cannot even be opened is named by its container. */
async function destinationUrl(named: { name: string; destination: BackupPolicy["destination"] }): Promise<string> {
  try {
    const store = await openStore(named.destination, { name: named.name });
    try {
      return store.url(store.prefix);
    } finally {
      store.close();
    }
  } catch {
    return `${named.destination.type ?? "s3"} ${destinationContainerOf(named.destination)}`;
  }
}

/**
 * The store `vrb restore` and `vrb drill` read, watched: when it does not answer, the error they
 * end with names the policy's other destinations and the `--destination` command that reads one
 * (docs/storage.md#copies-and---destination). The one place that wording lives.
 */
export async function openWatchedPolicyStore(policy: BackupPolicy, name?: string): Promise<WatchedStore> {
  const store = await openPolicyStore(policy, name);
  const failures: unknown[] = [];
  const watched = new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const out: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(out instanceof Promise)) return out;
        return out.catch((err: unknown) => {
          if (failures.length < 8) failures.push(err);
          throw err;
        });
      };
    },
  });
  const explain = async (err: unknown): Promise<unknown> => {
    if (!failures.length || err instanceof InterruptedError || !(err instanceof Error)) return err;
    const noAnswer = failures.find(storeDidNotAnswer);
    let why = noAnswer !== undefined ? store.describeError(noAnswer) || messageOf(noAnswer) : undefined;
    if (why === undefined) {
      // Some stores answer a missing container only as a missing object: ask the store itself, once.
      why = await store.checkContainer({ timeoutMs: 5_000 }).then(
        () => undefined,
        (missing: unknown) => (missing instanceof ConfigError ? messageOf(missing) : undefined),
      );
    }
    if (why === undefined) return err;
    const others = destinationsOf(policy).filter((d) => d.name !== store.name);
    if (!others.length) return err;
    const listed = await Promise.all(others.map(async (d) => `'${d.name}' (${await destinationUrl(d)})`));
    const first = others[0]!;
    const has = others.every((d) => !d.primary) ? "this policy has copies" : "this policy's other destinations are";
    const use = first.primary ? `run the same command with --destination ${first.name} (or without --destination)` : `run the same command with --destination ${first.name}`;
    // The error keeps its class, exit code, stage and partial report: only what to do next grows.
    err.message += `\n${store.url(store.prefix)} did not answer (${why}); ${has}: ${listed.join(", ")}: ${use}`;
    return err;
  };
  return { store: watched, explain };
}
