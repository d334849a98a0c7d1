import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { OperationError, messageOf } from "../errors.js";
import { packageInfo } from "../package-info.js";
import type { ObjectStore } from "../storage/object-store.js";
import { emptyRecord, type BackupLeaseFacts, type StatusRecord } from "../status/record.js";
import { StatusStore, lostRace } from "../status/status-store.js";
import { sleep } from "../wait.js";
import { timeoutSignal } from "../timeout-signal.js";

/**
 * One backup of a cluster at a time. The lease lives in the cluster's status object
 * (`<prefix><cluster>/vrb-status.json`, field `backupLease`: run id, host, pid, expiry), written
 * with the same conditional writes as every status update (only if absent to create, only if
 * unchanged since read to change), renewed while the backup runs and removed at its end. A second backup
 * started meanwhile says which run holds it and waits for it to finish (up to `waitMs`, then it
 * refuses, exit 1, stage `lease`), before it asks Vault for anything or uploads anything: two runs
 * never name the same key in the same second, or abort each other's uploads. A run killed without
 * its clean-up holds the lease until it expires (LEASE_TTL_MS). A store without conditional writes
 * (or that denies reading the status object) gets no lease, with a warning: a backup is never held
 * up by it. The status record's other fields are kept as they are (recordRun's updates keep the lease).
 */
export const LEASE_TTL_MS = 120_000;
const RENEW_EVERY_MS = 30_000;
/** A run that finds the lease held waits this long for it, polling every POLL_MS, then refuses. */
export const DEFAULT_LEASE_WAIT_MS = 10 * 60_000;
const POLL_MS = 1_000;
/** Each read or write of the status object gives up after this long. */
const STORE_CALL_TIMEOUT_MS = 10_000;

/** Another backup of the same cluster holds the lease: this one refused before doing anything. */
export class BackupBusyError extends OperationError {}

export interface LeaseOptions {
  /** The destination's store: the lease lives in its status object, under its prefix. */
  store: ObjectStore;
  cluster: string;
  ttlMs?: number;
  /** How long to wait for another run's lease before refusing (default DEFAULT_LEASE_WAIT_MS). */
  waitMs?: number;
  signal?: AbortSignal;
  info?: (message: string) => void;
  warn?: (message: string) => void;
}

const live = (l: BackupLeaseFacts | undefined): l is BackupLeaseFacts => Boolean(l && Date.parse(l.expiresAt) > Date.now());

export class BackupLease {
  private timer?: NodeJS.Timeout;
  private renewing?: Promise<void>;
  private lost = false;

  private constructor(
    private readonly o: LeaseOptions,
    readonly key: string,
    private facts: BackupLeaseFacts,
  ) {}

  /**
   * Takes the cluster's backup lease, waiting while another run holds it; throws BackupBusyError
   * naming that run when the wait runs out. Returns undefined (with a warning) when the store cannot hold one.
   */
  static async acquire(o: LeaseOptions): Promise<BackupLease | undefined> {
    const store = statusStoreOf(o);
    const key = store.key(o.cluster);
    const ttl = o.ttlMs ?? LEASE_TTL_MS;
    const where = o.store.url(key);
    const waitUntil = Date.now() + (o.waitMs ?? DEFAULT_LEASE_WAIT_MS);
    let told = false;
    for (let races = 0; ;) {
      if (o.signal?.aborted) throw new BackupBusyError(`stopped while waiting for the backup lease in ${where}`, { stage: "lease", cause: o.signal.reason });
      let current: Awaited<ReturnType<StatusStore["read"]>>;
      try {
        current = await store.read(o.cluster, { abortSignal: timeoutSignal(STORE_CALL_TIMEOUT_MS) });
      } catch (err) {
        o.warn?.(`the backup lease in ${where} could not be read (${o.store.describeError(err)}); going on without one`);
        return undefined;
      }
      const held = current.record?.backupLease;
      if (live(held)) {
        const who = `run ${held.run} on ${held.host}, pid ${held.pid}, since ${held.startedAt}`;
        if (Date.now() >= waitUntil) {
          throw new BackupBusyError(
            `another backup of cluster '${o.cluster}' is still running (${who}; lease in ${where}): this one stops without reading or writing anything. ` +
              `Schedule backups of one cluster so they do not overlap.`,
            { stage: "lease" },
          );
        }
        if (!told) {
          o.info?.(`another backup of cluster '${o.cluster}' is running (${who}): waiting for it to finish (up to ${Math.round((waitUntil - Date.now()) / 1000)}s)`);
          told = true;
        }
        await sleep(POLL_MS, o.signal);
        continue;
      }
      const now = Date.now();
      const facts: BackupLeaseFacts = {
        run: randomUUID(),
        host: hostname(),
        pid: process.pid,
        startedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + ttl).toISOString(),
      };
      try {
        await store.write(o.cluster, { ...(current.record ?? emptyRecord(o.cluster, packageInfo().version)), backupLease: facts }, current.etag, {
          abortSignal: timeoutSignal(STORE_CALL_TIMEOUT_MS),
        });
        const lease = new BackupLease(o, key, facts);
        lease.startRenewing(ttl);
        if (told) o.info?.(`backup lease taken (run ${facts.run})`);
        return lease;
      } catch (err) {
        // Someone else wrote the status object between our read and write: look again.
        if (lostRace(err) && ++races < 50) continue;
        o.warn?.(`the backup lease in ${where} could not be taken (${o.store.describeError(err)}); going on without one`);
        return undefined;
      }
    }
  }

  get run(): string {
    return this.facts.run;
  }

  private startRenewing(ttl: number): void {
    this.timer = setInterval(
      () => {
        this.renewing = this.update((held) => (held?.run === this.facts.run ? { ...this.facts, expiresAt: new Date(Date.now() + ttl).toISOString() } : "lost"))
          .then((facts) => {
            if (facts) this.facts = facts;
          })
          .catch((err: unknown) => this.o.warn?.(`the backup lease in ${this.o.store.url(this.key)} could not be renewed: ${messageOf(err)}`));
      },
      Math.min(RENEW_EVERY_MS, ttl / 3),
    );
    this.timer.unref();
  }

  /**
   * Read-modify-write of the lease field, retried on lost races. `change` gets the lease as stored
   * and returns the new one, undefined to remove it, or "lost" when another run holds it now.
   */
  private async update(change: (held: BackupLeaseFacts | undefined) => BackupLeaseFacts | undefined | "lost"): Promise<BackupLeaseFacts | undefined> {
    const store = statusStoreOf(this.o);
    for (let races = 0; ; races++) {
      const current = await store.read(this.o.cluster, { abortSignal: timeoutSignal(STORE_CALL_TIMEOUT_MS) });
      const next = change(current.record?.backupLease);
      if (next === "lost") {
        if (!this.lost) this.o.warn?.(`the backup lease in ${this.o.store.url(this.key)} expired and another run took it`);
        this.lost = true;
        return undefined;
      }
      const record: StatusRecord = { ...(current.record ?? emptyRecord(this.o.cluster, packageInfo().version)), backupLease: next };
      if (!next) delete record.backupLease;
      try {
        await store.write(this.o.cluster, record, current.etag, { abortSignal: timeoutSignal(STORE_CALL_TIMEOUT_MS) });
        return next;
      } catch (err) {
        if (!lostRace(err) || races >= 20) throw err;
        await sleep(Math.round(50 + Math.random() * 100));
      }
    }
  }

  /** Removes the lease (best effort: a lease left behind expires on its own). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.renewing;
    if (this.lost) return;
    await this.update((held) => (held?.run === this.facts.run ? undefined : "lost")).catch((err: unknown) => {
      this.o.warn?.(`the backup lease in ${this.o.store.url(this.key)} could not be released (it expires at ${this.facts.expiresAt}): ${messageOf(err)}`);
    });
  }
}

/** The lease's status object, read and written with the status record's conditional writes. */
function statusStoreOf(o: LeaseOptions): StatusStore {
  return new StatusStore(o.store);
}
