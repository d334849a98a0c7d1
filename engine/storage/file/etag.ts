import type { BigIntStats } from "node:fs";

// Every write makes a new file (a temporary renamed or linked into place), so a new inode and
// modification time: together with the size they change whenever the object does.

export function etagOf(st: BigIntStats): string {
  return `${st.mtimeNs.toString(36)}-${st.size.toString(36)}-${st.ino.toString(36)}`;
}

/** Snapshots and records are readable by the owner and its group only (a restore job may run as another user of the group). */
export const FILE_MODE = 0o640;
