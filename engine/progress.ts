import { redact } from "./redact.js";

/** Where long operations report what they are doing. Human text only; never machine output. */
export interface Progress {
  /** A step started or finished ("starting node 2/3", "unsealed"). */
  info(message: string): void;
  /** Something the operator should look at, that does not stop the operation. */
  warn(message: string): void;
  /** Byte progress of a long transfer; implementations throttle as they like. */
  bytes?(stage: string, done: number, total?: number): void;
}

export const silentProgress: Progress = { info() {}, warn() {} };

/**
 * The rate of one byte counter: bytes over the time they took. A counter waits now and then (a
 * retry's back-off, a part sent again, a download resumed, a peer that stalls); that waiting is
 * no part of its rate, or a transfer that moved 2 KiB in a blink reads as 108 B/s after a
 * 19-second back-off. A counter that reports less than before has started again (a retried
 * attempt): its rate starts again with it.
 */
export class TransferRate {
  private last?: { done: number; at: number };
  private movedBytes = 0;
  private movingMs = 0;
  /** The usual time between two reports of this counter (a moving average), once there is one. */
  private usualGapMs?: number;

  /** One report of the counter: `done` bytes so far at time `now` (ms). */
  update(done: number, now: number): void {
    const last = this.last;
    if (!last || done < last.done) {
      this.last = { done, at: now };
      this.movedBytes = 0;
      this.movingMs = 0;
      this.usualGapMs = undefined;
      return;
    }
    if (done === last.done) return;
    const gap = now - last.at;
    this.last = { done, at: now };
    // The bytes that ended a wait moved at some unknown moment inside it: neither they nor the
    // wait count. A wait is a gap far longer than the counter's usual one (chunks of a stream come
    // milliseconds apart, the parts of an upload seconds apart).
    if (this.usualGapMs !== undefined && gap > Math.max(MIN_WAIT_MS, WAIT_FACTOR * this.usualGapMs)) return;
    this.movedBytes += done - last.done;
    this.movingMs += gap;
    this.usualGapMs = this.usualGapMs === undefined ? gap : 0.8 * this.usualGapMs + 0.2 * gap;
  }

  /**
   * Bytes per second while the counter moved; undefined until it has moved long enough to tell. At
   * the end of a transfer (`whole`) any moving time will do: it is the whole transfer's average.
   */
  perSecond(whole = false): number | undefined {
    return this.movingMs >= (whole ? 1 : MIN_MOVING_MS) ? this.movedBytes / (this.movingMs / 1000) : undefined;
  }
}

/** A pause shorter than this is part of moving (a scheduler hiccup, a slow chunk). */
const MIN_WAIT_MS = 1000;
/** A gap this many times the usual one is a wait, not a slow chunk. */
const WAIT_FACTOR = 8;
/** Less moving time than this gives a rate that means nothing. */
const MIN_MOVING_MS = 200;

/** Human progress on stderr, throttled for byte counters. Secrets are redacted. */
export function stderrProgress(prefix = "vrb", now: () => number = Date.now): Progress {
  // One throttle per stage: with a single one, a fast counter ("snapshot stream") would starve a
  // slower one ("upload") of lines, and the operator would not see both moving.
  const lastBytesAt = new Map<string, number>();
  // A counter that reaches its total may be reported again at the total: a decrypting read counts
  // the stored bytes, which all arrive before the plaintext is through. One "done" line is enough,
  // unless the counter started again (a retried attempt) in between.
  const finished = new Set<string>();
  const latest = new Map<string, number>();
  const rates = new Map<string, TransferRate>();
  const write = (line: string) => process.stderr.write(redact(`${prefix}: ${line}`) + "\n");
  return {
    info: (m) => write(m),
    warn: (m) => write(`warning: ${m}`),
    bytes(stage, done, total) {
      const at = now();
      const rate = rates.get(stage) ?? (rates.set(stage, new TransferRate()), rates.get(stage)!);
      rate.update(done, at);
      if (done < (latest.get(stage) ?? 0)) finished.delete(stage);
      latest.set(stage, done);
      const atTotal = total !== undefined && done >= total;
      if (atTotal ? finished.has(stage) : at - (lastBytesAt.get(stage) ?? -Infinity) < 1000) return;
      lastBytesAt.set(stage, at);
      if (atTotal) finished.add(stage);
      const perSecond = rate.perSecond(atTotal);
      const of = total ? ` of ${formatBytes(total)}` : "";
      write(`${stage}: ${formatBytes(done)}${of}${perSecond === undefined ? "" : ` (${formatBytes(perSecond)}/s)`}`);
    },
  };
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}
