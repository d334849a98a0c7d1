import type { S3Client } from "@aws-sdk/client-s3";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { ConfigError, OperationError } from "../errors.js";
import { packageInfo } from "../local/tools.js";
import type { BackupPolicy } from "../policy.js";
import { silentProgress, type Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { createS3Client } from "../s3/client.js";
import { clusterTls } from "../vault/auth.js";
import { VaultClient } from "../vault/client.js";
import { LeaderWaitTimeoutError } from "../vault/operations.js";
import { preflightCluster } from "../vault/preflight.js";
import { sleep } from "../wait.js";
import { cleanUpFailedBackup } from "./cleanup.js";
import { checkStoredObject, lockObject, sseParamsFor, writeManifest, type StoredObject } from "./finishing.js";
import { manifestSchema, snapshotKeyFor, type SnapshotManifest } from "./manifest.js";
import { StagePipeline, stagedError, withStage } from "./pipeline.js";
import { HashingStage } from "./stages/hashing.js";
import { ArchiveInspectionStage } from "./stages/inspection.js";
import { openVaultSnapshotSource } from "./stages/source.js";
import { UploadStage } from "./stages/upload.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "./stream.js";

export interface BackupOptions {
  policy: BackupPolicy;
  /** Vault token; never logged. */
  token: string;
  /** Default createS3Client(policy.destination). */
  s3?: S3Client;
  progress?: Progress;
  /**
   * Re-run the whole pipeline (waiting for and re-discovering the leader) this many times after a
   * failure, with jittered exponential backoff; default `policy.backup.retries`, else 0 (the CLI and
   * the VaultSnapshot provider default to DEFAULT_BACKUP_RETRIES).
   */
  retries?: number;
  /**
   * How long each attempt waits for an active node while the cluster has standbys but no leader (an
   * election); default `policy.backup.leaderWaitSeconds`, else 60 s. Running out is final (no retry).
   */
  leaderWaitMs?: number;
  now?: () => Date;
  /** Overall deadline for one attempt (providers have no other timeout). */
  deadlineMs?: number;
  /** Abort when neither Vault nor S3 moved a byte for this long; default 60 s. */
  stallTimeoutMs?: number;
  /** Multipart part size (>= 5 MiB) and parts in flight; memory is about partSize * (queueSize + 1). */
  partSize?: number;
  queueSize?: number;
}

export interface BackupReport {
  ok: true;
  bucket: string;
  key: string;
  manifestKey: string;
  bytes: number;
  sha256: string;
  takenAt: string;
  raft: { index: number; term: number; snapshotId: string };
  vault: { version: string; leaderAddr: string; clusterId?: string; seal?: { type: string; recoverySeal: boolean } };
  lock?: { mode: "GOVERNANCE" | "COMPLIANCE"; until: string };
  sse?: { algorithm: string; kmsKeyId?: string };
  archive: { entries: number };
  durationsMs: Record<string, number>;
  warnings: string[];
}

const MiB = 1024 * 1024;
/** Upload defaults (exported so the benchmark's runbook upload uses the same settings). */
export const DEFAULT_PART_SIZE = 8 * MiB;
export const DEFAULT_QUEUE_SIZE = 2;
/** Retries of the CLI and the VaultSnapshot provider: enough to ride through a leader change mid-stream. */
export const DEFAULT_BACKUP_RETRIES = 2;
export const DEFAULT_LEADER_WAIT_MS = 60_000;

/** Backoff before attempt `attempt + 1`: exponential (1 s, 2 s, 4 s ... up to 30 s), with ±50 % jitter. */
export function retryBackoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(1_000 * 2 ** (attempt - 1), 30_000);
  return Math.round(base * (0.5 + random()));
}

/**
 * Takes one snapshot of the cluster and stores it: active node → preflight → one streamed pass
 * (a StagePipeline: the Vault stream through the hashing, archive check and upload stages) →
 * read-back → retention → manifest last. Any failure aborts the multipart upload and writes no
 * manifest; the error names the stage.
 */
export async function runBackup(opts: BackupOptions): Promise<BackupReport> {
  if (!opts.token) {
    throw new ConfigError("no Vault token: set VAULT_TOKEN (or BAO_TOKEN) to a token that may read sys/storage/raft/snapshot", { field: "token" });
  }
  if (!opts.policy.cluster.nodes.length) {
    throw new ConfigError("the policy lists no Vault node addresses; set cluster.nodes", { field: "cluster.nodes" });
  }
  const partSize = opts.partSize ?? DEFAULT_PART_SIZE;
  if (partSize < 5 * MiB) throw new ConfigError("partSize must be at least 5 MiB (an S3 limit)", { field: "partSize" });
  registerSecret(opts.token);
  const progress = opts.progress ?? silentProgress;
  const s3 = opts.s3 ?? createS3Client(opts.policy.destination);
  const attempts = (opts.retries ?? opts.policy.backup?.retries ?? 0) + 1;
  const earlier: string[] = [];
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const report = await backupOnce(opts, s3, progress);
        report.warnings.unshift(...earlier);
        return report;
      } catch (err) {
        const e = stagedError("backup", err);
        // A leader wait that ran out already waited as long as the policy allows: no other attempt.
        if (e instanceof ConfigError || e instanceof LeaderWaitTimeoutError || attempt >= attempts) throw e;
        const wait = retryBackoffMs(attempt);
        const note = `attempt ${attempt}/${attempts} failed at stage ${e.stage}: ${e.message}`;
        earlier.push(note);
        progress.warn(`${note}; retrying in ${(wait / 1000).toFixed(1)}s (the active node is looked up again)`);
        await sleep(wait);
      }
    }
  } finally {
    if (!opts.s3) s3.destroy();
  }
}

async function backupOnce(opts: BackupOptions, s3: S3Client, progress: Progress): Promise<BackupReport> {
  const { policy } = opts;
  const bucket = policy.destination.bucket;
  const kmsKeyId = policy.destination.kmsKeyId;
  const now = opts.now ?? (() => new Date());
  const started = Date.now();
  const durationsMs: Record<string, number> = {};
  // One attempt, one pipeline: its first failure wins, and every await below races against it, so
  // a stall, a deadline or a broken stream anywhere ends the attempt at once instead of waiting
  // for a side that will never finish.
  const pass = new StagePipeline();
  let current = "discover";
  const timed = async <T>(stage: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    current = stage;
    try {
      return await pass.race(f());
    } finally {
      durationsMs[stage] = Date.now() - t;
    }
  };
  const deadline = opts.deadlineMs
    ? setTimeout(
        () => pass.fail(current, new OperationError(`backup did not finish within ${Math.round(opts.deadlineMs! / 1000)}s (deadlineMs)`, { stage: current })),
        opts.deadlineMs,
      )
    : undefined;
  deadline?.unref();

  const client = new VaultClient({
    addr: policy.cluster.nodes[0]!,
    token: opts.token,
    // CA, server name and the mTLS client certificate (policy, else VAULT_CLIENT_CERT / VAULT_CLIENT_KEY).
    ...clusterTls(policy.cluster),
    retries: 2,
  });
  let key: string | undefined;
  const written: StoredObject[] = [];
  try {
    const leaderWaitMs = opts.leaderWaitMs ?? (policy.backup?.leaderWaitSeconds !== undefined ? policy.backup.leaderWaitSeconds * 1000 : DEFAULT_LEADER_WAIT_MS);
    const pre = await timed("preflight", () => preflightCluster(client, policy.cluster.nodes, progress, { leaderWaitMs, signal: pass.signal }));
    const warnings = [...pre.warnings];

    // ---- one pass: Vault → SHA-256 + archive check → multipart upload ----
    const transferStarted = Date.now();
    current = "stream";
    // Keys name whole seconds: a second backup in the same second (and at the same raft index)
    // would land on the first one's key. Wait for the next second instead (bounded, for clocks
    // given through opts.now that do not move).
    let takenAt = now();
    for (let i = 0; i < 2 && (await pass.race(secondTaken(s3, policy, takenAt, pass.signal))); i++) {
      await pass.race(sleep(1_005 - (takenAt.getTime() % 1_000)));
      takenAt = now();
    }
    // The stall watchdog starts with the stream; when it fires while the upload waits for S3, S3 is named.
    const source = await openVaultSnapshotSource(pass, client.forNode(pre.leaderAddr), {
      leaderAddr: pre.leaderAddr,
      stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      blame: () => upload.blame(),
    });
    const hashing = new HashingStage((n) => progress.bytes?.("snapshot stream", n));
    const inspection = new ArchiveInspectionStage();
    // The object key carries the raft index from meta.json, the archive's first entry: it is known
    // after a few KiB, long before the upload needs it for its first request.
    const keyKnown = inspection.meta.then((m) => {
      key = snapshotKeyFor(policy.destination.prefix, policy.cluster.name, takenAt, m.Index);
      progress.info(`raft index ${m.Index} (term ${m.Term}); uploading to s3://${bucket}/${key}`);
      return key;
    });
    keyKnown.catch(() => undefined);
    const upload = new UploadStage({
      s3,
      Bucket: bucket,
      Key: keyKnown,
      ContentType: "application/gzip",
      ...sseParamsFor(kmsKeyId),
      partSize: opts.partSize ?? DEFAULT_PART_SIZE,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
      signal: pass.signal,
      // The gate: a snapshot that fails the archive check never becomes an object.
      gate: () => inspection.result,
      onPartRetry: (m) => progress.info(m),
      onUploaded: (n) => {
        pass.touch();
        progress.bytes?.("upload", n);
      },
    });
    // The upload is finished last: its completion waits for the archive check's verdict anyway.
    await pass.run(source, [hashing, inspection, upload]);
    pass.close();
    const { Index, Term, ID } = await inspection.meta;
    const archive = await inspection.result;
    key = await keyKnown;
    const result = upload.result!;
    const object: StoredObject = { bucket, key, versionId: result.VersionId };
    written.push(object);
    const { sha256, bytes } = hashing;
    durationsMs.transfer = Date.now() - transferStarted;
    progress.bytes?.("snapshot stream", bytes, bytes);

    const sse = await timed("upload check", () => checkStoredObject(s3, object, { bytes, uploaded: upload.sink.uploaded, kmsKeyId }));

    let lock: BackupReport["lock"];
    if (policy.objectLock) {
      const until = new Date(takenAt.getTime() + policy.objectLock.days * 86_400_000);
      lock = await timed("lock", () => lockObject(s3, object, policy.objectLock!.mode, until));
      progress.info(`locked (${lock.mode}) until ${lock.until}`);
    }

    const manifest: SnapshotManifest = manifestSchema.parse({
      format: 1,
      cluster: policy.cluster.name,
      key,
      bytes,
      sha256,
      takenAt: takenAt.toISOString(),
      vault: { version: pre.version, leaderAddr: pre.leaderAddr, clusterId: pre.clusterId, seal: pre.seal },
      raft: { index: Index, term: Term, snapshotId: ID },
      archive: { entries: archive.entries.length, verified: true },
      lock,
      sse,
      tool: packageInfo(),
    } satisfies SnapshotManifest);
    const manifestKey = await timed("manifest", () => writeManifest(s3, manifest, { bucket, kmsKeyId, lock, signal: pass.signal, onWritten: (o) => written.push(o) }));
    durationsMs.total = Date.now() - started;
    progress.info(`snapshot stored: s3://${bucket}/${key} (${bytes} bytes, sha256 ${sha256.slice(0, 16)}...)`);
    written.length = 0;
    return {
      ok: true,
      bucket,
      key,
      manifestKey,
      bytes,
      sha256,
      takenAt: manifest.takenAt,
      raft: manifest.raft,
      vault: manifest.vault,
      lock,
      sse,
      archive: { entries: archive.entries.length },
      durationsMs,
      warnings,
    };
  } catch (err) {
    // Ends the pass (if it still runs): stages aborted, requests cancelled, the stream destroyed.
    const e = pass.fail(current, err);
    if (!key) throw e;
    const notes = await cleanUpFailedBackup(s3, bucket, key, written.reverse(), progress);
    if (!notes.length) throw e;
    throw withStage(e, e.stage ?? current, `${e.message}\n${notes.join("\n")}`);
  } finally {
    if (deadline) clearTimeout(deadline);
    pass.close();
    await client.close();
  }
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
