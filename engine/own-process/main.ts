// The child of runInOwnProcess (run.ts): reads one request from the IPC channel, performs it,
// answers, exits. Started only by that function.
import { onClosedOutput } from "../closed-output.js";
import { InterruptedError, type StopSignal } from "../errors.js";
import { stderrProgress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { perform, secretsOf, type OwnProcessRequest } from "./requests.js";
import type { OwnProcessAnswer } from "./run.js";
import { toWire } from "./wire.js";

const stop = new AbortController();
let progress = stderrProgress("vrb");
let running: OwnProcessRequest["operation"] | undefined;
/** This process's output met a closed pipe: its reader is gone (OwnProcessAnswer.outputClosed). */
let outputClosed = false;

/** What stopping means for the operation under way, as the warning says it. */
const STOPPING: Record<Exclude<OwnProcessRequest["operation"], "check">, string> = {
  backup: "at the next safe point (a snapshot not yet stored stays unstored: its upload is aborted, no manifest is written; a drill under way tears its throwaway cluster down)",
  restore: "at the next safe point (the error that follows says what state each node is in and what to run next)",
};

function stopAs(reason: InterruptedError): void {
  if (stop.signal.aborted) return;
  // A check only reads: nothing to clean up, so nothing to wait for.
  if (running === undefined || running === "check") process.exit(reason.exitCode);
  progress.warn(`${reason.message}: stopping ${STOPPING[running]}`);
  stop.abort(reason);
}
// The parent ended (Pulumi cancelled, the provider was killed): nobody waits for the answer, and a
// backup left running would hold its lease; stop as an interruption, which aborts the upload.
process.once("disconnect", () => stopAs(new InterruptedError("the process that started this one ended")));
for (const signal of ["SIGINT", "SIGTERM"] as const satisfies readonly StopSignal[]) {
  process.once(signal, () => stopAs(new InterruptedError(`interrupted (${signal})`, { signal })));
}
// This process's output is its host's stderr, a pipe that Pulumi's engine reads. When the engine is
// gone (SIGKILLed, its CI job or machine stopped) the host may live on, so the channel stays open,
// and the next line written meets a closed pipe (EPIPE). Unhandled, that error killed the process
// wherever it was: a restore between two steps, a drill's throwaway servers left running. It is
// the parent ending, told another way: stop as an interruption, and drop what is written after it.
onClosedOutput(() => {
  outputClosed = true;
  stopAs(new InterruptedError("the process reading this one's output ended"));
});

process.once("message", ({ request, progressPrefix }: { request: OwnProcessRequest; progressPrefix: string }) => {
  for (const secret of secretsOf(request)) registerSecret(secret);
  progress = stderrProgress(progressPrefix);
  running = request.operation;
  perform(request, progress, stop.signal).then(
    (result) => answer({ ok: true, result }),
    (err: unknown) => answer({ ok: false, error: toWire(err) }),
  );
});

function answer(answered: OwnProcessAnswer): void {
  const a: OwnProcessAnswer = outputClosed ? { ...answered, outputClosed } : answered;
  if (!process.connected) {
    // Nobody left to tell: the outcome goes to stderr (a backup's is in the status record too).
    progress.warn(a.ok ? "finished after the process that started this one ended" : `failed: ${a.error.message}`);
    process.exit(a.ok ? 0 : 1);
  }
  // Exit once the answer is out: idle keep-alive connections must not hold the process.
  process.send!(a, undefined, {}, () => process.exit(0));
}
