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
export interface PendingRestoreReport {
  ok: boolean;
  mode: "rebuild" | "in-place";
  snapshot: { bucket: string; key: string; sha256: string; raftIndex: number; takenAt: string };
  steps: unknown[];
  nodes: unknown[];
  autopilot?: unknown;
  raftIndex?: number;
  canaries: unknown[];
  durationMs: number;
}
export interface PendingRestoreEngine {
  parseUnsealKeys(text: string, source: string): string[];
  stagedRestore(opts: {
    mode: "rebuild" | "in-place"; nodes: string[]; store: SnapshotStore; snapshot: string; cluster?: string; unsealKeys: string[];
    token?: string; force?: boolean; canaries?: string[]; tls?: { caCert?: string; tlsServerName?: string }; progress?: Progress; timeoutsMs?: Record<string, number>;
  }): Promise<PendingRestoreReport>;
}
