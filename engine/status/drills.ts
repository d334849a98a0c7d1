import { parseDuration } from "../schedule.js";
import type { DrillFacts, DrillVerdict, StatusRecord } from "./record.js";

/*
 * When a scheduled drill is due, and what `vrb status --check` says about drills: pure functions of
 * the status record, so the backup, the status check and the unit tests judge alike.
 */

/** What the drill questions read of a record (a ClusterStatus carries the same fields). */
export type DrillHistory = Pick<StatusRecord, "lastDrill" | "lastPassedDrill" | "lastSkippedDrill" | "operations">;

/** Start of the newest passing drill; records of older versions only have `lastDrill` or the drill operation's last success. */
export function lastPassedDrillAt(r: DrillHistory | undefined): string | undefined {
  if (!r) return undefined;
  return r.lastPassedDrill?.at ?? (r.lastDrill?.ok ? r.lastDrill.at : undefined) ?? r.operations.drill?.lastSuccess;
}

export interface DrillDue {
  due: boolean;
  /** Why, in words: "no drill has passed yet", "the last passing drill (…) is 8.0 days old, drill.every is 7d", … */
  reason: string;
  lastPassed?: string;
}

/** A drill is due when no drill passed within `every` (a failed or skipped drill leaves it due). */
export function drillDue(r: DrillHistory | undefined, every: string, now: Date = new Date()): DrillDue {
  const lastPassed = lastPassedDrillAt(r);
  if (!lastPassed) return { due: true, reason: "no drill has passed yet" };
  const age = now.getTime() - Date.parse(lastPassed);
  if (age >= parseDuration(every)) {
    return { due: true, reason: `the last passing drill (${lastPassed}) is ${describeAge(age)} old; drill.every is ${every}`, lastPassed };
  }
  return { due: false, reason: `a drill passed ${describeAge(age)} ago (${lastPassed}); the next is due after drill.every ${every}`, lastPassed };
}

export interface DrillWindowCheck {
  /** drill.every. */
  every: string;
  /**
   * The schedule window (schedule.every): the due drill runs with the next backup, which may be
   * up to one window away, so the verdict allows that much on top of `every`.
   */
  schedule?: string;
  now?: Date;
}

/** The drill problems `vrb status --check` reports: the newest drill failed, or none passed within the window. */
export function drillProblems(r: DrillHistory, check: DrillWindowCheck): string[] {
  const now = check.now ?? new Date();
  const problems: string[] = [];
  const last = r.lastDrill;
  if (last && !last.ok)
    problems.push(`the newest drill (${last.at}${last.snapshot ? `, ${last.snapshot}` : ""}) failed${last.problems?.length ? `: ${last.problems.join("; ")}` : ""}`);
  const allowedMs = parseDuration(check.every) + (check.schedule ? parseDuration(check.schedule) : 0);
  const allowed = check.schedule ? `drill.every ${check.every} + one schedule window ${check.schedule}` : `drill.every ${check.every}`;
  const lastPassed = lastPassedDrillAt(r);
  const skipped = r.lastSkippedDrill;
  const skipNote = skipped?.skipped && (!lastPassed || Date.parse(skipped.at) > Date.parse(lastPassed)) ? `; the last drill was skipped (${skipped.at}): ${skipped.skipped}` : "";
  if (!lastPassed) problems.push(`no drill has passed yet (${allowed})${skipNote}`);
  else if (now.getTime() - Date.parse(lastPassed) > allowedMs) {
    problems.push(`no drill passed within ${allowed}: the last passing drill is from ${lastPassed}, ${describeAge(now.getTime() - Date.parse(lastPassed))} ago${skipNote}`);
  }
  return problems;
}

/** How `vrb list` shows a snapshot's drill verdict. */
export function describeVerdict(v: DrillVerdict | undefined): string {
  if (!v) return "not drilled";
  if (v.skipped) return "drill skipped";
  return v.ok ? "drill passed" : "DRILL FAILED";
}

/** The verdict record of a drill (what a snapshot's entry in `drills` holds). */
export function verdictOf(d: DrillFacts): DrillVerdict {
  return { at: d.at, ok: d.ok, rtoSeconds: d.rtoSeconds, problems: d.problems, skipped: d.skipped };
}

function describeAge(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 48 ? `${(hours / 24).toFixed(1)} days` : hours >= 1 ? `${hours.toFixed(1)}h` : `${Math.max(0, Math.round(ms / 60_000))}m`;
}
