import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { OperationError } from "../errors.js";
import { isNoSuchBucket } from "../s3/bucket.js";
import { sleep } from "../wait.js";
import { isMissingObject, s3ErrorInfo } from "../s3/client.js";
import { sseParamsFor } from "./finishing.js";

/**
 * One backup of a cluster at a time: a lease object `<prefix><cluster>/vrb-backup-lease.json`
 * taken with S3 conditional writes (If-None-Match: * to create, If-Match: <etag> to take over an
 * expired or released one), renewed while the backup runs and marked released at its end (the
 * writer may not delete). A second backup started meanwhile says which run holds it and waits for
 * it to finish (up to `waitMs`, then it refuses, exit 1), before it reads anything from Vault or
 * writes anything: two runs can never name the same key in the same second, or abort each other's
 * uploads. A run killed without its clean-up
 * holds the lease until it expires (LEASE_TTL_MS). A store that does not support conditional
 * writes (or denies reading the lease) gets no lease, with a warning: the backup is never held up by it.
 */
export const LEASE_TTL_MS = 120_000;
const RENEW_EVERY_MS = 30_000;
/** A run that finds the lease held waits this long for it, polling every POLL_MS, then refuses. */
export const DEFAULT_LEASE_WAIT_MS = 10 * 60_000;
const POLL_MS = 1_000;

export interface LeaseRecord {
  schema: 1;
  run: string;
  host: string;
  pid: number;
  startedAt: string;
  expiresAt: string;
  releasedAt?: string;
}

export function leaseKeyFor(prefix: string, cluster: string): string {
  return `${prefix}${cluster}/vrb-backup-lease.json`;
}

/** Another backup of the same cluster holds the lease: this one refused before doing anything. */
export class BackupBusyError extends OperationError {}

function lostRace(err: unknown): boolean {
  const { status, code } = s3ErrorInfo(err);
  return status === 412 || status === 409 || code === "PreconditionFailed" || code === "ConditionalRequestConflict";
}

export interface LeaseOptions {
  s3: S3Client;
  bucket: string;
  prefix: string;
  cluster: string;
  kmsKeyId?: string;
  ttlMs?: number;
  /** How long to wait for another run's lease before refusing (default DEFAULT_LEASE_WAIT_MS). */
  waitMs?: number;
  signal?: AbortSignal;
  info?: (message: string) => void;
  warn?: (message: string) => void;
  now?: () => Date;
}

export class BackupLease {
  private timer?: NodeJS.Timeout;
  private renewing?: Promise<void>;

  private constructor(
    private readonly o: LeaseOptions,
    readonly key: string,
    private record: LeaseRecord,
    private etag: string | undefined,
  ) {}

  /**
   * Takes the cluster's backup lease or throws BackupBusyError naming the run that holds it.
   * Returns undefined (with a warning) when the store cannot hold one.
   */
  static async acquire(o: LeaseOptions): Promise<BackupLease | undefined> {
    const key = leaseKeyFor(o.prefix, o.cluster);
    const ttl = o.ttlMs ?? LEASE_TTL_MS;
    const now = o.now ?? (() => new Date());
    const where = `s3://${o.bucket}/${key}`;
    const waitUntil = Date.now() + (o.waitMs ?? DEFAULT_LEASE_WAIT_MS);
    let told = false;
    for (let races = 0; ;) {
      if (o.signal?.aborted) throw new BackupBusyError(`stopped while waiting for the backup lease ${where}`, { stage: "lease", cause: o.signal.reason });
      let current: { record?: LeaseRecord; etag?: string };
      try {
        current = await readLease(o.s3, o.bucket, key);
      } catch (err) {
        // A missing bucket is the destination check's to report, with its exit code.
        if (isNoSuchBucket(err)) return undefined;
        o.warn?.(`backup lease ${where} could not be read (${s3ErrorInfo(err).code ?? messageOf(err)}); going on without one`);
        return undefined;
      }
      const held = current.record;
      if (held && !held.releasedAt && Date.parse(held.expiresAt) > now().getTime()) {
        const who = `run ${held.run} on ${held.host}, pid ${held.pid}, since ${held.startedAt}`;
        if (Date.now() >= waitUntil) {
          throw new BackupBusyError(
            `another backup of cluster '${o.cluster}' is still running (${who}; lease ${where}): this one stops without reading or writing anything. ` +
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
      const record: LeaseRecord = {
        schema: 1,
        run: randomUUID(),
        host: hostname(),
        pid: process.pid,
        startedAt: now().toISOString(),
        expiresAt: new Date(now().getTime() + ttl).toISOString(),
      };
      try {
        const etag = await writeLease(o, key, record, current.etag ? { IfMatch: current.etag } : { IfNoneMatch: "*" });
        const lease = new BackupLease(o, key, record, etag);
        lease.startRenewing(ttl);
        if (told) o.info?.(`backup lease ${where} taken (run ${record.run})`);
        return lease;
      } catch (err) {
        // Someone else wrote it between our read and write: look again (it is theirs now).
        if (lostRace(err) && ++races < 20) continue;
        const { status, code } = s3ErrorInfo(err);
        o.warn?.(`backup lease ${where} could not be taken (${code ?? status ?? messageOf(err)}); going on without one`);
        return undefined;
      }
    }
  }

  get run(): string {
    return this.record.run;
  }

  private startRenewing(ttl: number): void {
    this.timer = setInterval(
      () => {
        this.renewing = this.write({ ...this.record, expiresAt: new Date(Date.now() + ttl).toISOString() }).catch((err: unknown) => {
          this.o.warn?.(`backup lease s3://${this.o.bucket}/${this.key} could not be renewed: ${messageOf(err)}`);
        });
      },
      Math.min(RENEW_EVERY_MS, ttl / 3),
    );
    this.timer.unref();
  }

  private async write(record: LeaseRecord): Promise<void> {
    this.etag = await writeLease(this.o, this.key, record, this.etag ? { IfMatch: this.etag } : {});
    this.record = record;
  }

  /** Marks the lease released (best effort: an unreleased lease expires on its own). */
  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.renewing;
    await this.write({ ...this.record, releasedAt: new Date().toISOString() }).catch((err: unknown) => {
      this.o.warn?.(`backup lease s3://${this.o.bucket}/${this.key} could not be released (it expires at ${this.record.expiresAt}): ${messageOf(err)}`);
    });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function readLease(s3: S3Client, bucket: string, key: string): Promise<{ record?: LeaseRecord; etag?: string }> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: AbortSignal.timeout(10_000) });
    const text = await res.Body!.transformToString("utf8");
    let record: LeaseRecord | undefined;
    try {
      const parsed = JSON.parse(text) as Partial<LeaseRecord>;
      if (parsed.schema === 1 && typeof parsed.expiresAt === "string" && typeof parsed.run === "string") record = parsed as LeaseRecord;
    } catch {
      // unreadable: replaced (with If-Match) like an expired one
    }
    return { record, etag: res.ETag };
  } catch (err) {
    if (isMissingObject(err)) return {};
    throw err;
  }
}

async function writeLease(o: LeaseOptions, key: string, record: LeaseRecord, condition: { IfMatch?: string; IfNoneMatch?: string }): Promise<string | undefined> {
  const put = await o.s3.send(
    new PutObjectCommand({
      Bucket: o.bucket,
      Key: key,
      Body: JSON.stringify(record, null, 2),
      ContentType: "application/json",
      ...sseParamsFor(o.kmsKeyId),
      ...condition,
    }),
    { abortSignal: AbortSignal.timeout(10_000) },
  );
  return put.ETag;
}
