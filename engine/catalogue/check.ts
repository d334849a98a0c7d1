import { IntegrityError } from "../errors.js";
import type { SnapshotManifest } from "../snapshot/manifest.js";
import { parseSnapshotKey } from "../snapshot/manifest.js";
import type { SnapshotStore } from "./snapshot-store.js";
import { verifyStoredSnapshot } from "./verify-stored.js";

export interface SnapshotHealth {
  status: "good" | "missing" | "incomplete" | "corrupt";
  bucket: string;
  key: string;
  /** Where it is, in the store's URL scheme. */
  url: string;
  problems: string[];
  manifest?: SnapshotManifest;
}

/**
 * The health of one stored snapshot, for `pulumi refresh` and `vrb verify`: missing (deleted),
 * incomplete (no manifest), corrupt (manifest unreadable or disagreeing with the object, or with
 * `deep` a failed re-download check), or good. Findings are answers, not exceptions; only a
 * store that cannot be asked at all (network, credentials) throws, since then nothing is known.
 */
export async function checkStoredSnapshot(store: SnapshotStore, key: string, opts: { deep?: boolean } = {}): Promise<SnapshotHealth> {
  const url = store.url(key);
  const base = { bucket: store.bucket, key, url };
  const head = await store.objects.head(key);
  if (!head) return { ...base, status: "missing", problems: [`${url} does not exist`] };
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
  if (head.bytes !== manifest.bytes) problems.push(`object has ${head.bytes} bytes, manifest says ${manifest.bytes}`);
  if (problems.length) return { ...base, status: "corrupt", problems, manifest };
  if (opts.deep) {
    const parsed = parseSnapshotKey(key);
    try {
      await verifyStoredSnapshot(store, {
        bucket: store.bucket,
        key,
        url,
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
