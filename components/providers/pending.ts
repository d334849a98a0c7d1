// TEMPORARY: the contracts of runBackup / checkStoredSnapshot (#3) until they land in the engine.
import type { BackupPolicy, Progress, SnapshotStore, SnapshotManifest } from "../../engine/index.js";
export interface PendingBackupReport {
  ok: boolean; bucket: string; key: string; manifestKey: string; bytes: number; sha256: string; takenAt: string;
  raft: { index: number; term: number; snapshotId: string };
  vault: { version: string; leaderAddr: string; clusterId?: string };
  lock?: { mode: string; until: string };
}
export interface PendingEngine {
  runBackup(opts: { policy: BackupPolicy; token: string; progress?: Progress; retries?: number; deadlineMs?: number }): Promise<PendingBackupReport>;
  checkStoredSnapshot(store: SnapshotStore, key: string, opts?: { deep?: boolean }): Promise<{ status: "good" | "missing" | "incomplete" | "corrupt"; bucket: string; key: string; problems: string[]; manifest?: SnapshotManifest }>;
}
