import { OperationError, VrbError, interruption } from "../errors.js";
import { formatBytes } from "../progress.js";
import { VaultHttpError, type VaultClient } from "../vault/client.js";
import { restoreSnapshot } from "../vault/operations.js";
import type { RestoreRun } from "./restore-run.js";
import { formatMs } from "./steps.js";

/** Connection errors that mean the other side closed or reset the connection under us. */
const CUT_CODES = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);

/** How the upload ended early, seen from our side. */
export type UploadCut = "read-timeout" | "connection-closed";

/**
 * Whether a failed restore upload was cut by the server while we were still sending. OpenBao
 * bounds reading a whole request, body included, by the listener's `http_read_timeout` (30s by
 * default); past it, the body read fails and it answers 500 "failed to read snapshot file: ...
 * i/o timeout" (seen on OpenBao 2.7.2), or, when the answer cannot get through, the connection
 * is simply closed or reset while our body is still going out.
 */
export function uploadCut(err: unknown, sent: number, total: number): UploadCut | undefined {
  if (err instanceof VaultHttpError) {
    const text = err.errors.join(" ");
    return /i\/o timeout/i.test(text) && /snapshot/i.test(text) ? "read-timeout" : undefined;
  }
  if (sent >= total || !(err instanceof VrbError)) return undefined;
  const cause = err.cause as { code?: string; cause?: { code?: string } } | undefined;
  const code = cause?.code ?? cause?.cause?.code;
  return code && CUT_CODES.has(code) ? "connection-closed" : undefined;
}

/**
 * Sends the verified snapshot to `addr` (snapshot or snapshot-force), with byte progress; an
 * upload the server cut (http_read_timeout) fails with what happened, the listener setting to
 * raise, and the command to run again (the run's failure adds every node's state).
 */
export async function uploadSnapshot(run: RestoreRun, client: VaultClient, addr: string, file: string, force: boolean): Promise<void> {
  const total = run.snapshotBytes ?? 0;
  let sent = 0;
  const started = Date.now();
  // An interruption cancels the upload while it is still being sent (the node discards a partial
  // body, nothing is applied); once every byte is out the node is applying it, and the answer is
  // awaited, so the restore stops in a known phase.
  const signal = run.opts.signal;
  const cancel = new AbortController();
  const stopSending = () => {
    if (sent < total) cancel.abort();
  };
  await run.log.run(
    `restore snapshot (${force ? "snapshot-force" : "snapshot"})`,
    addr,
    async (c) => {
      signal?.addEventListener("abort", stopSending, { once: true });
      try {
        await c.vault(
          restoreSnapshot(client, file, {
            force,
            headersTimeoutMs: c.timeoutMs(),
            signal: cancel.signal,
            onBytes: (n, of) => {
              sent = n;
              run.progress.bytes?.("restore upload", n, of);
            },
          }),
          { status: async () => (sent < total ? `${formatBytes(sent)} of ${formatBytes(total)} sent` : `all ${formatBytes(total)} sent; ${addr} is applying it`) },
        );
      } catch (err) {
        if (cancel.signal.aborted && signal?.aborted) {
          throw interruption(
            signal,
            `during the snapshot upload to ${addr} (${formatBytes(sent)} of ${formatBytes(total)} sent; the node discards it, nothing was applied)`,
            "restore snapshot",
          );
        }
        const cut = uploadCut(err, sent, total);
        if (!cut) throw err;
        throw new OperationError(uploadCutMessage(run, addr, cut, sent, total, Date.now() - started), { stage: "restore snapshot", cause: err });
      } finally {
        signal?.removeEventListener("abort", stopSending);
      }
      c.detail = formatBytes(total);
    },
    { sized: true },
  );
}

function uploadCutMessage(run: RestoreRun, addr: string, cut: UploadCut, sent: number, total: number, elapsedMs: number): string {
  const what =
    cut === "read-timeout"
      ? `${addr} stopped reading the snapshot upload after ${formatMs(elapsedMs)} with an i/o timeout (about its listener's http_read_timeout)`
      : `${addr} (or a proxy in front of it) closed the connection after ${formatMs(elapsedMs)} while the snapshot was still being sent`;
  // "Sent" is what left this process; socket buffers hold some of it. Only a clearly partial
  // upload gives a rate worth extrapolating: the setting must outlast the whole body at that rate.
  const rate = sent < total * 0.9 && elapsedMs > 0 ? sent / (elapsedMs / 1000) : 0;
  const needS = rate > 0 ? Math.ceil(total / rate) : 0;
  const suggestMin = Math.max(10, Math.ceil((needS * 2) / 60));
  const pace = rate > 0 ? ` At the ${formatBytes(rate)}/s this upload reached, the whole snapshot needs about ${needS}s; allow twice that.` : "";
  return (
    `${what}; ${formatBytes(sent)} of ${formatBytes(total)} had left this machine. OpenBao and Vault bound reading a whole request, its body included, ` +
    `by the listener's http_read_timeout (30s by default), and this snapshot did not arrive in time: the snapshot was not applied.${pace} ` +
    `Raise it in the listener "tcp" stanza of every target node (e.g. http_read_timeout = "${suggestMin}m") and restart them ` +
    `(a reverse proxy or load balancer in between needs a body timeout as long), then ${rerunCommand(run)}.`
  );
}

/** What runs this restore again: for `vrb restore`, the command itself (the keys and token flags are the operator's own, never echoed). */
function rerunCommand(run: RestoreRun): string {
  if (!run.names.rerunIsVrbRestore) return run.names.rerun;
  const o = run.opts;
  const s = run.snapshot;
  const ref = o.remote ? "<the same snapshot URL>" : s ? s.url : o.snapshot;
  const mode = o.mode === "in-place" ? ` --mode in-place${o.force ? " --force" : ""}` : "";
  return `run again: vrb restore ${ref} --nodes ${run.nodes.join(",")}${mode} (with the same keys-file and token flags as before)`;
}
