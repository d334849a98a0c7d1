import { ConfigError } from "./errors.js";

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses '90s', '30m', '6h', '1d', '1w', or a combination like '1h30m', to milliseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+)([smhdw])/g;
  let total = 0;
  let consumed = 0;
  for (const m of text.trim().matchAll(re)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed === 0 || consumed !== text.trim().length) {
    throw new ConfigError(`'${text}' is not a duration; use e.g. '30m', '6h', '1d'`);
  }
  return total;
}

/**
 * The schedule window a moment falls in: windows are aligned to the Unix epoch, so every run of
 * `pulumi up` within the same window agrees on it without any state.
 */
export function scheduleWindow(every: string, now: Date = new Date()): { start: Date; end: Date; id: string } {
  const ms = parseDuration(every);
  const start = new Date(Math.floor(now.getTime() / ms) * ms);
  const end = new Date(start.getTime() + ms);
  return { start, end, id: start.toISOString().replace(/\.\d{3}Z$/, "Z") };
}
