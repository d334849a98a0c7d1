import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, PutObjectRetentionCommand, type S3Client } from "@aws-sdk/client-s3";
import { ConfigError, IntegrityError, OperationError, VrbError } from "../errors.js";
import { packageInfo } from "../local/tools.js";
import type { BackupPolicy } from "../policy.js";
import { silentProgress, type Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { createS3Client } from "../s3/client.js";
import { describeNetError, VaultClient } from "../vault/client.js";
import { preflightCluster } from "../vault/preflight.js";
import { sleep } from "../wait.js";
import { createArchiveInspector } from "./archive.js";
import { abortUnfinishedUploads, deleteWrittenVersions } from "./cleanup.js";
import { manifestKeyFor, manifestSchema, snapshotKeyFor, type SnapshotManifest } from "./manifest.js";
import { DEFAULT_STALL_TIMEOUT_MS, MultipartSink, openSnapshotStream, StallWatchdog } from "./stream.js";
import { HashTee } from "./verify.js";

export interface BackupOptions {
  policy: BackupPolicy;
  /** Vault token; never logged. */
  token: string;
  /** Default createS3Client(policy.destination). */
  s3?: S3Client;
  progress?: Progress;
  /** Re-run the whole pipeline (re-discovering the leader) this many times after a failure; default 0. */
  retries?: number;
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
  vault: { version: string; leaderAddr: string; clusterId?: string };
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

/** The same kind of error (so the same exit code) with a stage and, optionally, a longer message. */
function withStage(err: VrbError, stage: string, message = err.message): VrbError {
  const options = { stage, cause: err };
  if (err instanceof ConfigError) return new ConfigError(message, { ...options, field: err.field });
  if (err instanceof IntegrityError) return new IntegrityError(message, options);
  return new OperationError(message, options);
}

/** Gives every failure a stage and a safe message, keeping engine errors as they are. */
function staged(stage: string, err: unknown): VrbError {
  if (err instanceof VrbError) return err.stage ? err : withStage(err, stage);
  const name = (err as { name?: string })?.name;
  const detail = name && name !== "Error" && name !== "AbortError" ? `${name}: ${describeNetError(err)}` : describeNetError(err);
  return new OperationError(`${stage} failed: ${detail}`, { stage, cause: err });
}

/**
 * Takes one snapshot of the cluster and stores it (DESIGN.md §2): active node → preflight →
 * one streamed pass (SHA-256, archive check, multipart upload) → retention → manifest last.
 * Any failure aborts the multipart upload and writes no manifest; the error names the stage.
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
  const attempts = (opts.retries ?? 0) + 1;
  const earlier: string[] = [];
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const report = await backupOnce(opts, s3, progress);
        report.warnings.unshift(...earlier);
        return report;
      } catch (err) {
        const e = staged("backup", err);
        if (e instanceof ConfigError || attempt >= attempts) throw e;
        const wait = Math.min(2_000 * 2 ** (attempt - 1), 30_000);
        const note = `attempt ${attempt}/${attempts} failed at stage ${e.stage}: ${e.message}`;
        earlier.push(note);
        progress.warn(`${note}; retrying in ${wait / 1000}s (the active node is looked up again)`);
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
  const now = opts.now ?? (() => new Date());
  const started = Date.now();
  const durationsMs: Record<string, number> = {};
  const timed = async <T>(stage: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    current = stage;
    try {
      return await race(f());
    } finally {
      durationsMs[stage] = Date.now() - t;
    }
  };

  // One failure wins; every later await races against it, so a stall, a deadline or a broken
  // stream anywhere ends the attempt at once instead of waiting for a side that will never finish.
  let current = "discover";
  let failure: VrbError | undefined;
  let rejectFailed: (e: VrbError) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
  failed.catch(() => undefined);
  const abort = new AbortController();
  const fail = (err: VrbError) => {
    if (failure) return;
    failure = err;
    abort.abort(err);
    rejectFailed(err);
  };
  const race = <T>(p: Promise<T>): Promise<T> => Promise.race([p, failed]);
  const deadline = opts.deadlineMs
    ? setTimeout(
        () => fail(new OperationError(`backup did not finish within ${Math.round(opts.deadlineMs! / 1000)}s (deadlineMs)`, { stage: current })),
        opts.deadlineMs,
      )
    : undefined;
  deadline?.unref();

  const client = new VaultClient({
    addr: policy.cluster.nodes[0]!,
    token: opts.token,
    caCert: policy.cluster.caCert,
    tlsServerName: policy.cluster.tlsServerName,
    retries: 2,
  });
  let key: string | undefined;
  let source: Readable | undefined;
  let watchdog: StallWatchdog | undefined;
  const written: { key: string; versionId?: string }[] = [];
  try {
    const pre = await timed("preflight", () => preflightCluster(client, policy.cluster.nodes, progress));
    const warnings = [...pre.warnings];
    const leader = client.forNode(pre.leaderAddr);

    // ---- one pass: Vault → SHA-256 + archive check → multipart upload ----
    const transferStarted = Date.now();
    current = "stream";
    // Keys name whole seconds: a second backup in the same second (and at the same raft index)
    // would land on the first one's key. Wait for the next second instead (bounded, for clocks
    // given through opts.now that do not move).
    let takenAt = now();
    for (let i = 0; i < 2 && (await race(secondTaken(s3, policy, takenAt, abort.signal))); i++) {
      await race(sleep(1_005 - (takenAt.getTime() % 1_000)));
      takenAt = now();
    }
    source = await race(openSnapshotStream(leader, { signal: abort.signal }));
    const inspector = createArchiveInspector();
    const tee = new HashTee(inspector.input, (n) => {
      watchdog?.touch();
      progress.bytes?.("snapshot stream", n);
    });
    // The object key carries the raft index from meta.json, the archive's first entry: it is known
    // after a few KiB, long before the sink needs it for its first request.
    const keyKnown = inspector.meta.then((m) => {
      key = snapshotKeyFor(policy.destination.prefix, policy.cluster.name, takenAt, m.Index);
      progress.info(`raft index ${m.Index} (term ${m.Term}); uploading to s3://${bucket}/${key}`);
      return key;
    });
    keyKnown.catch(() => undefined);
    const sseParams = policy.destination.kmsKeyId ? { ServerSideEncryption: "aws:kms" as const, SSEKMSKeyId: policy.destination.kmsKeyId } : {};
    const sink = new MultipartSink({
      s3,
      Bucket: bucket,
      Key: keyKnown,
      ContentType: "application/gzip",
      ...sseParams,
      partSize: opts.partSize ?? DEFAULT_PART_SIZE,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
      signal: abort.signal,
      // The gate: the last part and the completion (or the single PUT) wait for the archive
      // check, so a snapshot that fails it never becomes an object.
      beforeComplete: () => inspector.result,
      onUploaded: (n) => {
        watchdog?.touch();
        progress.bytes?.("upload", n);
      },
    });
    watchdog = new StallWatchdog(opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS, (idle) => {
      const uploadBehind = sink.waitingForS3;
      const stage = uploadBehind ? "upload" : "stream";
      const who = uploadBehind ? `S3 (s3://${bucket}) accepted no data` : `the snapshot stream from ${pre.leaderAddr} sent no data`;
      fail(new OperationError(`${who} for ${Math.round(idle / 1000)}s; aborted (stall timeout)`, { stage }));
    }).start();
    source.on("error", (e) => fail(staged("stream", e)));
    inspector.result.catch((e: unknown) => fail(staged("archive check", e)));
    const flow = pipeline(source, tee, sink).catch((e: unknown) => {
      // The tee ends with the inspector's own error when the archive check rejected the bytes;
      // that failure is reported (with its stage) by the inspector's handler above.
      if (e === inspector.input.errored) return;
      fail(sink.s3Error !== undefined ? staged("upload", sink.s3Error) : staged("stream", e));
    });
    abort.signal.addEventListener("abort", () => {
      source?.destroy();
      inspector.input.destroy();
      sink.destroy();
    });

    const { Index, Term, ID } = await race(inspector.meta);
    key = await race(keyKnown);
    const [, archive] = await race(Promise.all([flow, inspector.result]));
    const result = sink.result;
    if (!result) throw new OperationError(`the upload of s3://${bucket}/${key} ended without an object`, { stage: "upload" });
    const lastUploaded = sink.uploaded;
    watchdog.stop();
    written.push({ key, versionId: result.VersionId });
    const sha256 = tee.hash.digest("hex");
    const bytes = tee.bytes;
    durationsMs.transfer = Date.now() - transferStarted;
    progress.bytes?.("snapshot stream", bytes, bytes);

    const head = await timed("upload check", () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: result.VersionId })));
    if (head.ContentLength !== bytes) {
      throw new IntegrityError(`s3://${bucket}/${key} holds ${head.ContentLength} bytes but ${bytes} were sent (uploaded ${lastUploaded})`, { stage: "upload" });
    }
    const sse = head.ServerSideEncryption ? { algorithm: head.ServerSideEncryption, kmsKeyId: head.SSEKMSKeyId } : undefined;
    if (policy.destination.kmsKeyId && sse?.algorithm !== "aws:kms") {
      throw new OperationError(`s3://${bucket}/${key} is not SSE-KMS encrypted although destination.kmsKeyId is set (server reports ${sse?.algorithm ?? "none"})`, {
        stage: "upload",
      });
    }

    let lock: BackupReport["lock"];
    if (policy.objectLock) {
      const until = new Date(takenAt.getTime() + policy.objectLock.days * 86_400_000);
      lock = await timed("lock", () => lockObject(s3, bucket, key!, result.VersionId, policy.objectLock!.mode, until));
      progress.info(`locked (${lock.mode}) until ${lock.until}`);
    }

    const manifest: SnapshotManifest = manifestSchema.parse({
      format: 1,
      cluster: policy.cluster.name,
      key,
      bytes,
      sha256,
      takenAt: takenAt.toISOString(),
      vault: { version: pre.version, leaderAddr: pre.leaderAddr, clusterId: pre.clusterId },
      raft: { index: Index, term: Term, snapshotId: ID },
      archive: { entries: archive.entries.length, verified: true },
      lock,
      sse,
      tool: packageInfo(),
    } satisfies SnapshotManifest);
    const manifestKey = manifestKeyFor(key);
    await timed("manifest", async () => {
      const put = await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: manifestKey,
          Body: JSON.stringify(manifest, null, 2) + "\n",
          ContentType: "application/json",
          ...sseParams,
        }),
        { abortSignal: abort.signal },
      );
      written.push({ key: manifestKey, versionId: put.VersionId });
      // The manifest is kept as long as its snapshot: without it the snapshot would not count.
      if (policy.objectLock && lock) await lockObject(s3, bucket, manifestKey, put.VersionId, policy.objectLock.mode, new Date(lock.until));
    });
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
    const e = failure ?? staged(current, err);
    fail(e);
    watchdog?.stop();
    source?.destroy();
    const notes: string[] = [];
    if (key) {
      const cleaned = await abortUnfinishedUploads(s3, bucket, key, { deadlineMs: 60_000 });
      if (cleaned.aborted.length) progress.info(`aborted unfinished multipart upload of s3://${bucket}/${key}`);
      if (cleaned.left.length) {
        notes.push(
          `the unfinished multipart upload of s3://${bucket}/${key} could not be aborted (${cleaned.error ?? "still listed"}); ` +
            `abort it with 'aws s3api abort-multipart-upload' or let a lifecycle rule (AbortIncompleteMultipartUpload) remove it`,
        );
      }
      // Written objects without a manifest would only be "incomplete"; remove them if the lock allows.
      notes.push(...(await deleteWrittenVersions(s3, bucket, written.reverse())));
    }
    if (!notes.length) throw e;
    throw withStage(e, e.stage ?? current, `${e.message}\n${notes.join("\n")}`);
  } finally {
    if (deadline) clearTimeout(deadline);
    watchdog?.stop();
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

/** Sets per-object retention explicitly (multipart objects get no lock from bucket defaults on every server) and reads it back. */
async function lockObject(
  s3: S3Client,
  bucket: string,
  key: string,
  versionId: string | undefined,
  mode: "GOVERNANCE" | "COMPLIANCE",
  until: Date,
): Promise<{ mode: "GOVERNANCE" | "COMPLIANCE"; until: string }> {
  try {
    await s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: key, VersionId: versionId, Retention: { Mode: mode, RetainUntilDate: until } }));
  } catch (err) {
    throw new OperationError(
      `could not set ${mode} retention on s3://${bucket}/${key}: ${describeNetError(err)} (object lock must be enabled when the bucket is created)`,
      { stage: "lock", cause: err },
    );
  }
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  const got = head.ObjectLockRetainUntilDate;
  // Servers store whole seconds; allow for that, nothing more.
  if (head.ObjectLockMode !== mode || !got || got.getTime() < until.getTime() - 1_000) {
    throw new OperationError(
      `s3://${bucket}/${key} does not report the retention just set (mode ${head.ObjectLockMode ?? "none"}, until ${got?.toISOString() ?? "none"}; wanted ${mode} until ${until.toISOString()})`,
      { stage: "lock" },
    );
  }
  return { mode, until: got.toISOString() };
}
