import { encryptorFor } from "../crypto/encryptor.js";
import { ConfigError, InterruptedError, OperationError, interruption } from "../errors.js";
import { collectFiles } from "../files/collect.js";
import type { BackupPolicy } from "../policy.js";
import { silentProgress, type Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import type { ObjectStore } from "../storage/object-store.js";
import { destinationsOf } from "../storage/named-destination.js";
import { isStoreFull } from "../storage/errors.js";
import { openStore } from "../storage/registry.js";
import { clusterTls } from "../vault/login-settings.js";
import { VaultClient } from "../vault/client.js";
import { LeaderWaitTimeoutError } from "../vault/operations.js";
import { preflightCluster, type PreflightReport } from "../vault/cluster-preflight.js";
import type { Product } from "../vault/product.js";
import { sleep } from "../wait.js";
import { BackupAttempt } from "./attempt.js";
import { cleanUpCopy, containerFieldOf, CopyTarget } from "./copies.js";
import { finishCopies, type FinishedCopy } from "./finish-copies.js";
import { cleanUpFailedBackup } from "./cleanup.js";
import { BackupBusyError, BackupLease } from "./lease.js";
import { finishBackup, type FinishedBackup } from "./finish-primary.js";
import type { BackupInventory } from "../snapshot/inventory/in-backup.js";
import type { SnapshotManifest } from "../snapshot/manifest.js";
import { stagedError, withStage } from "./pipeline.js";
import { streamSnapshotToStore, type SnapshotPassResult } from "./snapshot-pass.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "./stall-watchdog.js";
import { pickTakenAt } from "./taken-at.js";

export interface BackupOptions {
  policy: BackupPolicy;
  /** Vault token; never logged. */
  token: string;
  /** The destination's store (its container and prefix are where the snapshot goes); default openStore(policy.destination), closed at the end. */
  store?: ObjectStore;
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
  /** Abort when neither Vault nor the store moved a byte for this long; default 60 s. */
  stallTimeoutMs?: number;
  /** Upload part size (>= 5 MiB) and parts in flight; memory is about partSize * (queueSize + 1). */
  partSize?: number;
  queueSize?: number;
  /**
   * Stops the backup (e.g. on SIGTERM): the attempt running fails with the reason, naming its
   * stage, its unfinished upload is aborted and no manifest is written; no further attempt.
   */
  signal?: AbortSignal;
}

/** The error a backup stopped through `signal` fails with. */
function interrupted(signal: AbortSignal, stage: string): InterruptedError {
  return interruption(signal, `during stage ${stage}; no manifest was written, so nothing of this run is listed as a snapshot`, stage);
}

/** Where one destination's snapshot went, or why it did not (a copy detached from the pass). */
export type DestinationOutcome =
  | { name: string; type: string; primary: boolean; ok: true; url: string; key: string; manifestKey: string; bytes: number; sha256: string }
  | { name: string; type: string; primary: false; ok: false; stage: string; error: string };

export interface BackupReport {
  ok: true;
  bucket: string;
  key: string;
  manifestKey: string;
  bytes: number;
  sha256: string;
  takenAt: string;
  raft: { index: number; term: number; snapshotId: string };
  /** The source cluster: its version and product (absent when its sys/health did not tell), active node, seal. */
  vault: { version: string; product?: Product; leaderAddr: string; clusterId?: string; seal?: { type: string; recoverySeal: boolean } };
  lock?: { mode: "GOVERNANCE" | "COMPLIANCE"; until: string };
  sse?: { algorithm: string; kmsKeyId?: string };
  archive: { entries: number };
  /** Keys counted in the snapshot (all of them, and in mounts), when they could be counted. */
  inventory?: { totalKeys: number; totalBytes: number; mounts: number };
  /** The shrink guard's comparison, when the policy has a guard and a previous good snapshot existed. */
  guard?: BackupInventory["guard"];
  /** Set when the guard (action fail) marked the stored snapshot suspect; runBackup then throws (stage "guard"). */
  suspect?: { reason: string };
  /** Client-side encryption: who can decrypt (`bytes`/`sha256` above are the ciphertext's). */
  encryption?: SnapshotManifest["encryption"];
  /** The configuration files archive stored beside the snapshot. */
  files?: { key: string; entries: number };
  durationsMs: Record<string, number>;
  warnings: string[];
  /** Every destination, the primary first, each with its outcome (the same sha256 everywhere it is ok). */
  destinations: DestinationOutcome[];
}

/**
 * With `onCopyFailure: fail` (the default), the error a backup whose copy failed ends with (exit 1,
 * stage `copy <name>`), although its primary snapshot is stored and good; undefined otherwise.
 */
export function copyFailureOf(report: BackupReport, policy: Pick<BackupPolicy, "onCopyFailure">): OperationError | undefined {
  if (policy.onCopyFailure === "warn") return undefined;
  const failed = report.destinations.flatMap((d) => (d.ok ? [] : [d]));
  if (!failed.length) return undefined;
  const primary = report.destinations[0]!;
  const lines = failed.map((d) => `copy '${d.name}' failed at stage ${d.stage}: ${d.error}`);
  return new OperationError(
    `the snapshot is stored and good in '${primary.name}' (${primary.ok ? primary.url : report.key}), but ${lines.join("; ")}. ` +
      "onCopyFailure is 'fail': fix the copy's store and back up again, or set onCopyFailure: warn to accept a missing copy",
    { stage: `copy ${failed[0]!.name}` },
  );
}

const MiB = 1024 * 1024;
/** Upload defaults (exported so the benchmark's runbook upload uses the same settings). */
export const DEFAULT_PART_SIZE = 8 * MiB;
// 3 parts in flight: on a link 20 ms away 2 left S3 idle between parts (docs/benchmarks.md); each
// more costs 8 MiB of the 160 MiB memory budget.
export const DEFAULT_QUEUE_SIZE = 3;
/** Retries of the CLI and the VaultSnapshot provider: enough to ride through a leader change mid-stream. */
export const DEFAULT_BACKUP_RETRIES = 2;
export const DEFAULT_LEADER_WAIT_MS = 60_000;

/** Backoff before attempt `attempt + 1`: exponential (1 s, 2 s, 4 s ... up to 30 s), with ±50 % jitter. */
export function retryBackoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(1_000 * 2 ** (attempt - 1), 30_000);
  return Math.round(base * (0.5 + random()));
}

/**
 * Takes one snapshot of the cluster and stores it: input checks → the destination bucket exists →
 * active node (preflight) → one streamed pass (a StagePipeline: the Vault stream through the
 * hashing, archive check and upload stages) → finishBackup (read-back, files, retention, guard,
 * manifest last). Any failure aborts the multipart upload and writes no manifest; the error names
 * the stage.
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
  const onWaiting = (m: string) => progress.warn(m);
  const store = opts.store ?? (await openStore(opts.policy.destination, { onWaiting }));
  const copyStores = await Promise.all(
    destinationsOf(opts.policy)
      .slice(1)
      .map((d) => openStore(d.destination, { name: d.name, onWaiting })),
  );
  const attempts = (opts.retries ?? opts.policy.backup?.retries ?? 0) + 1;
  const earlier: string[] = [];
  // One backup of a cluster at a time (engine/backup/lease.ts): a second one waits, then refuses.
  // Taken once per run, by the first attempt, right after the bucket is known to exist (a missing
  // bucket is a configuration error, not a lease to warn about), before Vault is asked anything.
  let lease: BackupLease | undefined;
  let leaseAsked = false;
  const takeLease = async (): Promise<void> => {
    if (leaseAsked) return;
    leaseAsked = true;
    lease = await BackupLease.acquire({
      store,
      cluster: opts.policy.cluster.name,
      signal: opts.signal,
      info: (m) => progress.info(m),
      warn: (m) => progress.warn(m),
    });
  };
  try {
    if (opts.policy.objectLock && !store.capabilities.lock) {
      throw new ConfigError(
        `objectLock is set but destination '${store.name}' (${store.type}) cannot lock objects: remove objectLock from the policy, or store the snapshots where objects can be locked`,
        { field: "objectLock" },
      );
    }
    for (let attempt = 1; ; attempt++) {
      let report: BackupReport;
      try {
        report = await backupOnce(opts, store, copyStores, progress, takeLease);
        report.warnings.unshift(...earlier);
      } catch (err) {
        const e = stagedError("backup", err);
        // A leader wait that ran out already waited as long as the policy allows: no other attempt.
        // Nor after being told to stop, nor when another run holds the cluster's lease (it waited),
        // nor into a full or read-only file system.
        const final = e instanceof ConfigError || e instanceof LeaderWaitTimeoutError || e instanceof BackupBusyError || isStoreFull(e);
        if (final || attempt >= attempts || opts.signal?.aborted) throw e;
        const wait = retryBackoffMs(attempt);
        const note = `attempt ${attempt}/${attempts} failed at stage ${e.stage}: ${e.message}`;
        earlier.push(note);
        progress.warn(`${note}; retrying in ${(wait / 1000).toFixed(1)}s (the active node is looked up again)`);
        await sleep(wait, opts.signal);
        if (opts.signal?.aborted) throw interrupted(opts.signal, "backup");
        continue;
      }
      // Outside the retry: a shrink is a finding about the cluster, another attempt would find it again.
      if (report.suspect) {
        throw new OperationError(`${report.suspect.reason}. The snapshot is stored as suspect (never 'latest'; restorable when named): ${store.url(report.key)}`, {
          stage: "guard",
        });
      }
      return report;
    }
  } finally {
    await lease?.release();
    if (!opts.store) store.close();
    for (const c of copyStores) c.close();
  }
}

async function backupOnce(opts: BackupOptions, store: ObjectStore, copyStores: readonly ObjectStore[], progress: Progress, takeLease: () => Promise<void>): Promise<BackupReport> {
  const { policy } = opts;
  // Fresh per attempt: a copy detached in a failed attempt is written again by the next one.
  const copies = (policy.copies ?? []).map((d, i) => new CopyTarget(copyStores[i]!.name, i, d, copyStores[i]!));
  // One attempt, one pipeline: its first failure wins, and every await below races against it, so
  // a stall, a deadline or a broken stream anywhere ends the attempt at once instead of waiting
  // for a side that will never finish.
  const attempt = new BackupAttempt(opts.deadlineMs);
  const stop = () => attempt.pass.fail(attempt.current, interrupted(opts.signal!, attempt.current));
  if (opts.signal?.aborted) stop();
  opts.signal?.addEventListener("abort", stop, { once: true });
  const client = new VaultClient({
    addr: policy.cluster.nodes[0]!,
    token: opts.token,
    // CA, server name and the mTLS client certificate (policy, else VAULT_CLIENT_CERT / VAULT_CLIENT_KEY).
    ...clusterTls(policy.cluster),
    retries: 2,
  });
  try {
    const leaderWaitMs = opts.leaderWaitMs ?? (policy.backup?.leaderWaitSeconds !== undefined ? policy.backup.leaderWaitSeconds * 1000 : DEFAULT_LEADER_WAIT_MS);
    // Bad encryption settings and plaintext private keys among the files are refused before
    // anything is read from Vault or written to the bucket.
    const encryptor = await encryptorFor(policy.encryption);
    const files = policy.files ? await attempt.timed("files", () => collectFiles(policy.files!, Boolean(encryptor))) : undefined;
    // So is a bucket that does not exist (exit 2), in one request, before Vault is asked for anything.
    const unchecked = await attempt.timed("destination", () => store.checkContainer({ signal: attempt.pass.signal }));
    if (unchecked) progress.info(unchecked);
    // Every copy's too: a copy that can never be written is a configuration error, not a warning.
    for (const c of copies) {
      const note = await attempt.timed("destination", () => c.store.checkContainer({ field: `copies.${c.index}.${containerFieldOf(c.store.type)}`, signal: attempt.pass.signal }));
      if (note) progress.info(`copy '${c.name}': ${note}`);
    }
    await takeLease();
    const pre = await attempt.timed("preflight", () => preflightCluster(client, policy.cluster.nodes, progress, { leaderWaitMs, signal: attempt.pass.signal }));

    const transferStarted = Date.now();
    attempt.current = "stream";
    const takenAt = await pickTakenAt(store, policy, opts.now ?? (() => new Date()), attempt.pass);
    const leader = client.forNode(pre.leaderAddr);
    const partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    const stored = await streamSnapshotToStore(attempt, {
      store,
      policy,
      leader,
      leaderAddr: pre.leaderAddr,
      takenAt,
      progress,
      stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      partSize,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
      encryptor,
      copies,
    });
    attempt.durationsMs.transfer = Date.now() - transferStarted;
    const finished = await finishBackup(attempt, { store, policy, pre, stored, takenAt, leader, progress, files, encryptor, partSize });
    attempt.succeeded();
    progress.info(`snapshot stored: ${store.url(stored.object.key)} (${stored.bytes} bytes, sha256 ${stored.sha256.slice(0, 16)}...)`);
    const copiesStarted = Date.now();
    const done = copies.length
      ? await finishCopies(copies, { policy, stored, manifest: finished.manifest, files, encryptor, partSize, progress })
      : new Map<CopyTarget, FinishedCopy>();
    if (copies.length) attempt.durationsMs.copies = Date.now() - copiesStarted;
    return backupReport(store, pre, stored, finished, attempt.durationsMs, copies, done);
  } catch (err) {
    const e = attempt.fail(err);
    // The primary failed: no destination keeps anything of this attempt.
    for (const c of copies) {
      c.detach(e);
      c.noteCleanup(await cleanUpCopy(c, progress));
    }
    if (!attempt.key) throw e;
    const notes = await cleanUpFailedBackup(store, attempt.key, attempt.written.reverse(), progress, attempt.ownUploads());
    if (!notes.length) throw e;
    throw withStage(e, e.stage ?? attempt.current, `${e.message}\n${notes.join("\n")}`);
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    attempt.dispose();
    await client.close();
  }
}

/** What runBackup returns for a stored snapshot: the manifest's facts, how long each stage took, what to look at. */
function backupReport(
  store: ObjectStore,
  pre: PreflightReport,
  stored: SnapshotPassResult,
  f: FinishedBackup,
  durationsMs: Record<string, number>,
  copies: readonly CopyTarget[],
  done: ReadonlyMap<CopyTarget, FinishedCopy>,
): BackupReport {
  const { manifest, judged } = f;
  const okAt = (s: ObjectStore, primary: boolean, key: string, manifestKey: string): DestinationOutcome => ({
    name: s.name,
    type: s.type,
    primary,
    ok: true,
    url: s.url(key),
    key,
    manifestKey,
    bytes: stored.bytes,
    sha256: stored.sha256,
  });
  const destinations: DestinationOutcome[] = [
    okAt(store, true, stored.object.key, f.manifestKey),
    ...copies.map((c): DestinationOutcome => {
      const finished = done.get(c);
      if (finished) return okAt(c.store, false, finished.manifest.key, finished.manifestKey);
      return { name: c.name, type: c.store.type, primary: false, ok: false, stage: c.error?.stage ?? c.stageName, error: c.error?.message ?? "not written" };
    }),
  ];
  return {
    ok: true,
    bucket: store.container,
    key: stored.object.key,
    manifestKey: f.manifestKey,
    bytes: stored.bytes,
    sha256: stored.sha256,
    takenAt: manifest.takenAt,
    raft: manifest.raft,
    vault: manifest.vault,
    lock: manifest.lock,
    sse: f.sse,
    archive: { entries: stored.archiveEntries },
    inventory: judged.inventory && { totalKeys: judged.inventory.totalKeys, totalBytes: judged.inventory.totalBytes, mounts: judged.inventory.mounts.length },
    guard: judged.guard,
    suspect: judged.suspect,
    encryption: manifest.encryption,
    files: manifest.files && { key: manifest.files.key, entries: manifest.files.entries.length },
    durationsMs,
    warnings: [...pre.warnings, ...judged.warnings],
    destinations,
  };
}
