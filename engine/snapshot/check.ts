import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { IntegrityError } from "../errors.js";
import { isMissingObject } from "../s3/client.js";
import type { SnapshotManifest } from "./manifest.js";
import { parseSnapshotKey } from "./manifest.js";
import type { SnapshotStore } from "./store.js";
import { verifyStoredSnapshot } from "./verify.js";

export interface SnapshotHealth {
  status: "good" | "missing" | "incomplete" | "corrupt";
  bucket: string;
  key: string;
  problems: string[];
  manifest?: SnapshotManifest;
}

/**
 * The health of one stored snapshot, for `pulumi refresh` and `vrb verify`: missing (deleted),
 * incomplete (no manifest), corrupt (manifest unreadable or disagreeing with the object, or with
 * `deep` a failed re-download check), or good. Findings are answers, not exceptions; only an
 * S3 that cannot be asked at all (network, credentials) throws, since then nothing is known.
 */
export async function checkStoredSnapshot(store: SnapshotStore, key: string, opts: { deep?: boolean } = {}): Promise<SnapshotHealth> {
  const base = { bucket: store.bucket, key };
  let head;
  try {
    head = await store.s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
  } catch (err) {
    if (isMissingObject(err)) return { ...base, status: "missing", problems: [`s3://${store.bucket}/${key} does not exist`] };
    throw err;
  }
  let manifest: SnapshotManifest | undefined;
  try {
    manifest = await store.readManifest(key);
  } catch (err) {
    if (err instanceof IntegrityError) return { ...base, status: "corrupt", problems: [err.message] };
    throw err;
  }
  if (!manifest) return { ...base, status: "incomplete", problems: ["no manifest (the backup did not finish)"] };
  const problems: string[] = [];
  if (manifest.key !== key) problems.push(`manifest names ${manifest.key}, not ${key}`);
  if (head.ContentLength !== manifest.bytes) problems.push(`object has ${head.ContentLength} bytes, manifest says ${manifest.bytes}`);
  if (problems.length) return { ...base, status: "corrupt", problems, manifest };
  if (opts.deep) {
    const parsed = parseSnapshotKey(key);
    try {
      await verifyStoredSnapshot(store, {
        bucket: store.bucket,
        key,
        cluster: manifest.cluster,
        takenAt: new Date(manifest.takenAt),
        raftIndex: parsed?.index ?? manifest.raft.index,
        bytes: manifest.bytes,
        status: "good",
        manifest,
      });
    } catch (err) {
      if (err instanceof IntegrityError) return { ...base, status: "corrupt", problems: [err.message], manifest };
      throw err;
    }
  }
  return { ...base, status: "good", problems: [], manifest };
}
