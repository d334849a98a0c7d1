import type { Readable } from "node:stream";
import { OperationError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";

/**
 * Opens `GET sys/storage/raft/snapshot` on the active node. No body timeout: a multi-GiB
 * snapshot takes as long as it takes; the caller's StallWatchdog catches a stream that stops.
 * A standby's 307 is followed by VaultClient.open (never https -> http); a 200 from a standby
 * (OpenBao 2.7 answers some that way) is fine too.
 */
export async function openSnapshotStream(leader: VaultClient, opts: { signal?: AbortSignal; headersTimeoutMs?: number } = {}): Promise<Readable> {
  const res = await leader.open("GET", "sys/storage/raft/snapshot", {
    bodyTimeout: 0,
    headersTimeout: opts.headersTimeoutMs ?? 120_000,
    signal: opts.signal,
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text().catch(() => "");
    let detail = text.slice(0, 300);
    try {
      const errors = (JSON.parse(text) as { errors?: string[] }).errors;
      if (errors?.length) detail = errors.join("; ");
    } catch {
      // not JSON: keep the text
    }
    const hint = res.statusCode === 403 ? " (the token needs read on sys/storage/raft/snapshot)" : "";
    throw new OperationError(`GET ${leader.addr}/v1/sys/storage/raft/snapshot answered ${res.statusCode}${hint}${detail ? `: ${detail}` : ""}`, {
      stage: "stream",
    });
  }
  return res.body;
}

/**
 * Fires `onStall` when `touch()` has not been called for `timeoutMs`. Stream bodies have no
 * timeout of their own, so this is what turns a hung node or S3 server into a clear error.
 */
export class StallWatchdog {
  private last = Date.now();
  private timer?: NodeJS.Timeout;
  constructor(
    private readonly timeoutMs: number,
    private readonly onStall: (idleMs: number) => void,
  ) {}
  start(): this {
    this.last = Date.now();
    this.timer = setInterval(() => {
      const idle = Date.now() - this.last;
      if (idle >= this.timeoutMs) {
        this.stop();
        this.onStall(idle);
      }
    }, Math.min(1_000, Math.max(50, this.timeoutMs / 4)));
    this.timer.unref();
    return this;
  }
  touch(): void {
    this.last = Date.now();
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
