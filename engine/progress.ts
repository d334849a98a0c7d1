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
  let lastBytesAt = 0;
  const started = Date.now();
  const write = (line: string) => process.stderr.write(redact(`${prefix}: ${line}`) + "\n");
  return {
    info: (m) => write(m),
    warn: (m) => write(`warning: ${m}`),
    bytes(stage, done, total) {
      const now = Date.now();
      if (now - lastBytesAt < 1000 && (total === undefined || done < total)) return;
      lastBytesAt = now;
      const secs = Math.max((now - started) / 1000, 0.001);
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
