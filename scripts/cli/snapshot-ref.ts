import { existsSync, statSync } from "node:fs";
import { IntegrityError, parseSnapshotKey, parseSnapshotRef, type BackupPolicy, type SnapshotStore, type StoredSnapshot } from "../../engine/index.js";
import { policyFromCli, type PolicyFlags } from "./options.js";

/** A reference that names a file on disk (`./x.snap`, `/tmp/x.snap`) rather than a stored snapshot. */
export function isSnapshotFile(ref: string): boolean {
  if (ref === "latest" || ref.startsWith("s3://")) return false;
  return existsSync(ref) && statSync(ref).isFile();
}

/**
 * The policy of a command that reads one stored snapshot: an `s3://BUCKET/KEY` reference names its
 * bucket and (through the key) its cluster, so it needs no policy, flag or VRB_* variable.
 */
export function policyForRef(ref: string, o: PolicyFlags, env: NodeJS.ProcessEnv = process.env): BackupPolicy {
  const parsed = parseSnapshotRef(ref, "placeholder-bucket");
  const flags: PolicyFlags = { ...o };
  if (ref.startsWith("s3://") && "key" in parsed) {
    flags.bucket ??= parsed.bucket;
    flags.cluster ??= parseSnapshotKey(parsed.key)?.cluster ?? env.VRB_CLUSTER ?? "unknown";
  }
  return policyFromCli(flags, env, { requireNodes: false });
}

/**
 * The stored snapshot a reference names, refused (IntegrityError at `stage`, exit 3) unless it is
 * good: a command that reads a snapshot's contents must never act on a damaged or unchecked one.
 */
export async function resolveGood(store: SnapshotStore, ref: string, cluster: string, stage: string): Promise<StoredSnapshot> {
  const snapshot = await store.resolve(ref, cluster);
  if (snapshot.status !== "good") {
    throw new IntegrityError(`${snapshot.url} is ${snapshot.status}: ${snapshot.problem ?? "no manifest"}`, { stage });
  }
  return snapshot;
}
