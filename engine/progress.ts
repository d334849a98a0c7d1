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

/** Human progress on stderr, throttled for byte counters. Secrets are redacted. */
export function stderrProgress(prefix = "vrb"): Progress {
  // One throttle per stage: with a single one, a fast counter ("snapshot stream") would starve a
  // slower one ("upload") of lines, and the operator would not see both moving.
  const lastBytesAt = new Map<string, number>();
  // Rates are per stage too, from the stage's first report (not from when this object was made).
  const stageStarted = new Map<string, number>();
  const created = Date.now();
  const write = (line: string) => process.stderr.write(redact(`${prefix}: ${line}`) + "\n");
  return {
    info: (m) => write(m),
    warn: (m) => write(`warning: ${m}`),
    bytes(stage, done, total) {
      const now = Date.now();
      const started = stageStarted.get(stage) ?? (stageStarted.set(stage, now), now);
      if (now - (lastBytesAt.get(stage) ?? 0) < 1000 && (total === undefined || done < total)) return;
      lastBytesAt.set(stage, now);
      // Until a stage has run for a moment its own rate means nothing: measure from our creation then.
      const secs = Math.max((now - (now - started >= 200 ? started : created)) / 1000, 0.001);
      const rate = formatBytes(done / secs) + "/s";
      const of = total ? ` of ${formatBytes(total)}` : "";
      write(`${stage}: ${formatBytes(done)}${of} (${rate})`);
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
