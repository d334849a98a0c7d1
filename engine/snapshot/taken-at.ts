import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import type { BackupPolicy } from "../policy.js";
import { sleep } from "../wait.js";
import { snapshotKeyFor } from "./manifest.js";
import type { StagePipeline } from "./pipeline.js";

/**
 * The time that names the snapshot. Keys name whole seconds: a second backup in the same second
 * (and at the same raft index) would land on the first one's key, so it waits for the next second
 * instead (bounded, for clocks given through `now` that do not move).
 */
export async function pickTakenAt(s3: S3Client, policy: BackupPolicy, now: () => Date, pass: StagePipeline): Promise<Date> {
  let takenAt = now();
  for (let i = 0; i < 2 && (await pass.race(secondTaken(s3, policy, takenAt, pass.signal))); i++) {
    await pass.race(sleep(1_005 - (takenAt.getTime() % 1_000)));
    takenAt = now();
  }
  return takenAt;
}

/**
 * Whether a snapshot object already exists for this cluster and second. Best effort: a store that
 * denies listing (s3:ListBucket is not otherwise needed for a backup) or does not answer within
 * 2 s counts as "not taken".
 */
async function secondTaken(s3: S3Client, policy: BackupPolicy, takenAt: Date, signal: AbortSignal): Promise<boolean> {
  // The key up to the raft index, from the one implementation of the key layout.
  const probe = snapshotKeyFor(policy.destination.prefix, policy.cluster.name, takenAt, 0);
  const prefix = probe.slice(0, probe.lastIndexOf("-") + 1);
  try {
    // Short and bounded: the probe must never hold up a backup (a stalled S3 server is caught by the
    // stall watchdog once the transfer runs).
    const abortSignal = AbortSignal.any([signal, AbortSignal.timeout(2_000)]);
    const page = await s3.send(new ListObjectsV2Command({ Bucket: policy.destination.bucket, Prefix: prefix, MaxKeys: 1 }), { abortSignal });
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
  } catch {
    return false;
  }
}
