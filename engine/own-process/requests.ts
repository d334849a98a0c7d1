// What a process of its own (run.ts) can be asked to do, and how each answer crosses back: plain
// values only (the channel copies them), errors as WireErrors.
import { checkStoredSnapshot, type SnapshotHealth } from "../catalogue/check.js";
import { SnapshotStore } from "../catalogue/snapshot-store.js";
import { runRecordedBackup, type RecordedBackup, type RecordedBackupOptions } from "../backup/recorded-backup.js";
import type { Progress } from "../progress.js";
import { runRecordedStagedRestore, type RecordedRestoreOptions } from "../restore/recorded-restore.js";
import type { RestoreReport } from "../restore/restore-run.js";
import type { Destination } from "../storage/destination.js";
import { openStore } from "../storage/registry.js";
import { fromWire, toWire, type WireError } from "./wire.js";

/** runRecordedBackup's options without what cannot cross a process (functions, signals). */
export type RecordedBackupRequest = Omit<RecordedBackupOptions, "signal" | "progress">;

/** runRecordedStagedRestore's options without what cannot cross a process. */
export type RecordedRestoreRequest = Omit<RecordedRestoreOptions, "signal" | "progress">;

/** checkStoredSnapshot of `key` in the store `destination` names. */
export interface StoredSnapshotCheckRequest {
  destination: Destination;
  key: string;
  deep: boolean;
}

export type OwnProcessRequest =
  ({ operation: "backup" } & RecordedBackupRequest) | ({ operation: "check" } & StoredSnapshotCheckRequest) | ({ operation: "restore" } & RecordedRestoreRequest);

/** The answer to each operation, as it crosses the channel. */
export interface WireResults {
  backup: Omit<RecordedBackup, "failures"> & { failures: WireError[] };
  check: SnapshotHealth;
  restore: RestoreReport;
}

/**
 * The secret values a request carries (a token, login material, unseal or recovery keys, private
 * keys and their passphrase). They were registered for redaction where the parent read them; the
 * child registers them again on arrival, before anything it prints.
 */
export function secretsOf(request: OwnProcessRequest): (string | undefined)[] {
  if (request.operation === "check") return [];
  const shared = [request.token, request.credentials?.secretId, request.credentials?.jwt];
  if (request.operation === "backup") return shared;
  return [...shared, ...(request.keys?.keys ?? []), request.keys?.rootToken, ...(request.identities ?? []).map((i) => i.text), request.identityPassphrase];
}

/** The child's side: runs `request` and returns its answer in wire form. */
export async function perform(request: OwnProcessRequest, progress: Progress, signal: AbortSignal): Promise<WireResults[OwnProcessRequest["operation"]]> {
  if (request.operation === "backup") {
    const { operation: _op, ...options } = request;
    const r = await runRecordedBackup({ ...options, progress, signal });
    return { ...r, failures: r.failures.map(toWire) };
  }
  if (request.operation === "restore") {
    const { operation: _op, ...options } = request;
    return runRecordedStagedRestore({ ...options, progress, signal });
  }
  const objects = await openStore(request.destination);
  try {
    return await checkStoredSnapshot(new SnapshotStore(objects), request.key, { deep: request.deep });
  } finally {
    objects.close();
  }
}

/** The parent's side of a backup's answer: its failures as engine errors again. */
export function recordedBackupFromWire(w: WireResults["backup"]): RecordedBackup {
  return { ...w, failures: w.failures.map((f) => fromWire(f)) };
}
