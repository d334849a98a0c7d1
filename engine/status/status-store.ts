import { OperationError } from "../errors.js";
import { StoreConflictError } from "../storage/errors.js";
import type { ObjectStore } from "../storage/object-store.js";
import { sleep } from "../wait.js";
import { STATUS_OBJECT_NAME, parseStatusRecord, type StatusRecord } from "./record.js";

/** Key of a cluster's status object: beside its snapshots, so the same access scope covers it. */
export function statusKeyFor(prefix: string, cluster: string): string {
  return `${prefix}${cluster}/${STATUS_OBJECT_NAME}`;
}

/** A lost race of a conditional write: the object changed, or appeared, since it was read. */
export function lostRace(err: unknown): boolean {
  return err instanceof StoreConflictError;
}

/**
 * Reads and updates the status object. Updates are read-modify-write with the store's conditional
 * writes (only if absent to create, only if unchanged since read to replace): a writer that lost a
 * race re-reads and re-applies its change, so concurrent runs never overwrite each other's updates
 * (docs/status.md).
 */
export class StatusStore {
  constructor(readonly objects: ObjectStore) {}

  key(cluster: string): string {
    return statusKeyFor(this.objects.prefix, cluster);
  }

  /** The status object's URL, for messages. */
  url(cluster: string): string {
    return this.objects.url(this.key(cluster));
  }

  async read(cluster: string, opts: { abortSignal?: AbortSignal } = {}): Promise<{ record?: StatusRecord; etag?: string }> {
    const stored = await this.objects.readText(this.key(cluster), { signal: opts.abortSignal });
    if (!stored) return {};
    return { record: parseStatusRecord(stored.text), etag: stored.etag };
  }

  /**
   * Stores `record` only if the object is still the one read with `etag` (none: only if there is no
   * object yet); a lost race throws StoreConflictError (see lostRace).
   */
  async write(cluster: string, record: StatusRecord, etag: string | undefined, opts: { abortSignal?: AbortSignal } = {}): Promise<void> {
    await this.objects.writeText(this.key(cluster), JSON.stringify(record, null, 2), {
      contentType: "application/json",
      ...(etag ? { ifMatch: etag } : { ifAbsent: true }),
      signal: opts.abortSignal,
    });
  }

  /** Applies `change` to the current record and stores it, retrying on lost races (with jitter). */
  async update(cluster: string, change: (prev: StatusRecord | undefined) => StatusRecord, opts: { attempts?: number } = {}): Promise<StatusRecord> {
    const attempts = opts.attempts ?? 10;
    for (let attempt = 1; ; attempt++) {
      const { record, etag } = await this.read(cluster);
      const next = change(record);
      try {
        await this.write(cluster, next, etag);
        return next;
      } catch (err) {
        if (!lostRace(err)) throw err;
        if (attempt >= attempts) throw new OperationError(`status object ${this.url(cluster)}: still changing under us after ${attempts} attempts`, { cause: err });
        await sleep(Math.round(50 + Math.random() * 100 * attempt));
      }
    }
  }
}
