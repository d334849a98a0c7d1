import { OperationError } from "../errors.js";
import type { StoreType } from "../storage/destination.js";
import { StoreCapabilityError } from "../storage/errors.js";
import type { SnapshotStore } from "./snapshot-store.js";

export interface LegalHoldReport {
  ok: true;
  bucket: string;
  key: string;
  /** Where the snapshot is, in the store's URL scheme. */
  url: string;
  /** true after `vrb hold`, false after `vrb release`. */
  hold: boolean;
  /** Every object that now carries (or no longer carries) the hold, with the version it was set on. */
  objects: { key: string; versionId?: string }[];
}

/** What a store needs before a legal hold can be set, said when it refuses. */
const HOLD_NEEDS: Partial<Record<StoreType, string>> = {
  s3: "the bucket needs Object Lock, enabled when it was created, and the caller s3:PutObjectLegalHold",
  gcs: "the caller needs storage.objects.update on the bucket",
  azure: "the container needs version-level immutability support, and the caller permission to set legal holds",
};

/**
 * Sets (or clears) a legal hold on a snapshot's current version and on every object beside it
 * (`<key>.manifest.json`, and any other `<key>.*` such as a files index): a held version cannot be
 * deleted by anyone until the hold is released, whatever its retention says. For incident
 * response: freeze the evidence / the last good state. Needs a store with legal holds (S3 with
 * Object Lock and `s3:PutObjectLegalHold`: an operator's permission, not the backup writer's).
 */
export async function setLegalHold(store: SnapshotStore, key: string, hold: boolean): Promise<LegalHoldReport> {
  const objectStore = store.objects;
  const stage = hold ? "hold" : "release";
  const url = store.url(key);
  if (!objectStore.capabilities.legalHold) {
    throw new StoreCapabilityError(
      `destination '${objectStore.name}' is a ${objectStore.type} store, which has no legal holds: ${url} cannot be ${hold ? "held" : "released"}; ` +
        `copy the snapshot to a store that has them (s3 with Object Lock, gcs, azure) to freeze it`,
      { stage },
    );
  }
  const keys = (await objectStore.list(key)).map((o) => o.key).sort();
  if (!keys.includes(key)) throw new OperationError(`snapshot ${url} does not exist`, { stage });
  const objects: LegalHoldReport["objects"] = [];
  for (const k of keys) {
    const where = objectStore.url(k);
    const head = await objectStore.head(k);
    if (!head) throw new OperationError(`${where} disappeared while its legal hold was being ${hold ? "set" : "cleared"}`, { stage });
    const versionId = head.version && head.version !== "null" ? head.version : undefined;
    try {
      await objectStore.setLegalHold({ key: k, version: versionId }, hold);
    } catch (err) {
      const needs = HOLD_NEEDS[objectStore.type] ?? `the ${objectStore.type} store must allow legal holds`;
      throw new OperationError(`could not ${hold ? "set" : "clear"} the legal hold on ${where}: ${objectStore.describeError(err)} (${needs})`, { stage, cause: err });
    }
    const after = await objectStore.head(k, { version: versionId });
    if ((after?.lock?.legalHold === true) !== hold) {
      throw new OperationError(
        `${where} reports legal hold ${after?.lock?.legalHold === undefined ? "none" : after.lock.legalHold ? "ON" : "OFF"} after it was set ${hold ? "ON" : "OFF"}`,
        {
          stage,
        },
      );
    }
    objects.push({ key: k, versionId });
  }
  return { ok: true, bucket: store.bucket, key, url, hold, objects };
}
