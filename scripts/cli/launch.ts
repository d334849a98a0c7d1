// How `vrb` starts (docs/architecture.md#start-up). Everything here runs before the command's
// modules load, so it uses Node built-ins only (and the engine's two-module package lookup):
// - `vrb --version` prints package.json's version and stops: no commander, no engine (~0.06 s).
// - A streaming command needs V8's heap settings (BOUNDED_HEAP_FLAGS), which V8 reads only
//   at start-up. The executable's interpreter line (scripts/vrb.ts) passes the flags to the one Node
//   it starts, so `vrb backup` is one process (as the tests run it). Only when they are missing
//   (`node vrb.js backup`) does relaunchWithBoundedHeap start a second Node: the launcher stays a
//   thin parent that passes signals on and exits with the worker's status.
// - `--help` never relaunches: it moves no snapshot.
// Then scripts/cli/main.ts loads only the module of the command named (scripts/cli/commands.ts).
import { spawn } from "node:child_process";
import { BOUNDED_HEAP_FLAGS } from "../../engine/bounded-heap.js";
import { onClosedOutput } from "../../engine/closed-output.js";
import { exitCodeOfSignal, STOP_SIGNALS } from "../../engine/errors.js";
import { packageInfo } from "../../engine/package-info.js";

/** The commands that stream a snapshot through the process, where peak memory is a promise. */
const STREAMING_COMMANDS = new Set(["backup", "verify", "restore", "drill", "recover", "export", "inspect"]);

/**
 * `vrb --version` / `vrb -V` alone: prints the version (as commander would) and returns true, having
 * loaded nothing but package.json (found upwards from this module, bundled or not).
 */
export function printVersionIfAsked(argv = process.argv): boolean {
  const args = argv.slice(2);
  if (args.length !== 1 || (args[0] !== "--version" && args[0] !== "-V")) return false;
  process.stdout.write(`${packageInfo().version}\n`);
  return true;
}

/** Whether a command line asks for help: help moves no snapshot, so it runs where it is. */
function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

/**
 * A reader that goes away (`vrb list | head`, `vrb backup 2>&1 | head`, a log shipper that
 * restarts) closes our stdout or stderr. Node then emits EPIPE as an unhandled 'error' and the
 * process dies wherever it is: mid-upload, with the upload left unfinished. What is written to a
 * closed pipe is dropped instead; the command goes on, and its exit status still says how it went.
 */
export function dropOutputToClosedPipes(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  onClosedOutput(() => undefined, streams);
}

/** The AWS SDK warns about Node 20 on every start; that is not news for the operator at 3 a.m. */
export function quietKnownWarnings(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

/**
 * As the init of a PID namespace (a container's command, PID 1), a process gets only the signals it
 * has a handler for: the kernel drops the rest. A command without a handler of its own (list,
 * status, inspect, hold ...) would then never see the kubelet's SIGTERM and run on until the
 * SIGKILL at the end of the grace period. So an init gets the default action back by hand: a stop
 * signal no other listener handles ends it with the shell's code for it (143 for SIGTERM). Commands
 * that stop cleanly (runInterruptible, the exporter) keep their own handling. Elsewhere a no-op.
 */
export function stopOnSignalsAsInit(pid = process.pid): void {
  if (pid !== 1) return;
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (process.listenerCount(signal) === 1) process.exit(exitCodeOfSignal(signal));
    });
  }
}

/** Set by the launcher for its worker: the launcher's pid (the worker then has an IPC channel to it). */
const LAUNCHER_ENV = "VRB_LAUNCHER_PID";

/**
 * For a streaming command, runs this same program again in a child Node with BOUNDED_HEAP_FLAGS and
 * resolves true once it has exited (with its exit status passed on); resolves false when this
 * process should run the command itself (any other command, or the young generation's size is already chosen, also by
 * the user through NODE_OPTIONS or execArgv, or by the executable's interpreter line; or help asked).
 */
export function relaunchWithBoundedHeap(argv = process.argv): Promise<boolean> {
  const command = argv.slice(2).find((a) => !a.startsWith("-"));
  const set = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)].some((a) => a.startsWith("--max-semi-space-size"));
  if (!command || !STREAMING_COMMANDS.has(command) || set || asksForHelp(argv.slice(2))) return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    // The fourth stdio is an IPC channel the worker watches: it closes when this process dies in any
    // way, SIGKILL included, and the worker then stops as on SIGTERM (followLauncher).
    // Its own process group: Ctrl-C at a terminal (and a CI runner's kill of the job's group)
    // signals the whole foreground group, and the worker, also sent the signal by this process,
    // would see every Ctrl-C twice, the second meaning "stop at once, skip the clean-up"
    // (scripts/cli/common.ts). Here each signal reaches it exactly once, through this process.
    const child = spawn(process.execPath, [...BOUNDED_HEAP_FLAGS, ...process.execArgv, argv[1]!, ...argv.slice(2)], {
      stdio: ["inherit", "inherit", "inherit", "ipc"],
      env: { ...process.env, [LAUNCHER_ENV]: String(process.pid) },
      detached: true,
    });
    // A signal meant for vrb (Ctrl-C, a Kubernetes SIGTERM to PID 1) goes to the command, which
    // stops at a safe point, cleans up (aborts its upload, stops throwaway nodes) and exits; this
    // process follows it with the same exit code.
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    for (const s of STOP_SIGNALS) process.on(s, forward);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      for (const s of STOP_SIGNALS) process.off(s, forward);
      if (signal) process.kill(process.pid, signal);
      else process.exitCode = code ?? 1;
      resolve(true);
    });
  });
}

/**
 * In a worker started by relaunchWithBoundedHeap: when the launcher is gone (its IPC channel
 * closed: killed with SIGKILL, or crashed), the worker stops exactly as on SIGTERM (a backup aborts
 * its upload, writes no manifest and records the run as failed; commands without their own handler
 * end at once), so no work goes on that the scheduler, which saw the launcher die, knows nothing of.
 * The channel does not keep the worker alive. Elsewhere a no-op.
 */
export function followLauncher(): void {
  const launcher = process.env[LAUNCHER_ENV];
  delete process.env[LAUNCHER_ENV];
  if (!launcher || !process.send || !process.channel) return;
  process.once("disconnect", () => {
    process.stderr.write(`vrb: the launching process (pid ${launcher}) is gone; stopping as on SIGTERM\n`);
    process.kill(process.pid, "SIGTERM");
  });
  process.channel.unref();
}
