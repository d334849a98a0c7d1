import { parseDuration, scheduleWindow } from "../schedule.js";
import type { StoredSnapshot } from "./snapshot-store.js";

export interface RecoveryPointStatus {
  ok: boolean;
  /** The policy's schedule.every. */
  every: string;
  newestGood?: { key: string; takenAt: string };
  /** Age of the newest good snapshot, in seconds. */
  ageSeconds?: number;
  /** Snapshots older than this miss the schedule (start of the previous window). */
  oldestAcceptable: string;
  message: string;
}

/**
 * Is the newest good snapshot recent enough for the schedule? One snapshot per window, taken at
 * any time within it, means the newest must lie in the current or the previous window: anything
 * older means at least one whole window passed without a good snapshot.
 */
export function recoveryPointStatus(snapshots: StoredSnapshot[], every: string, now: Date = new Date()): RecoveryPointStatus {
  const previousStart = new Date(scheduleWindow(every, now).start.getTime() - parseDuration(every));
  const newest = snapshots.filter((s) => s.status === "good").sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime())[0];
  const base = { every, oldestAcceptable: previousStart.toISOString() };
  if (!newest) return { ...base, ok: false, message: `no good snapshot at all (schedule: every ${every})` };
  const ageSeconds = Math.max(0, Math.round((now.getTime() - newest.takenAt.getTime()) / 1000));
  const ok = newest.takenAt.getTime() >= previousStart.getTime();
  const age = ageSeconds >= 7200 ? `${(ageSeconds / 3600).toFixed(1)}h` : `${Math.round(ageSeconds / 60)}m`;
  return {
    ...base,
    ok,
    newestGood: { key: newest.key, takenAt: newest.takenAt.toISOString() },
    ageSeconds,
    message: ok
      ? `newest good snapshot is ${age} old (schedule: every ${every})`
      : `newest good snapshot is ${age} old: at least one ${every} window passed without a good snapshot`,
  };
}
