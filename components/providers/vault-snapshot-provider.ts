import type * as pulumi from "@pulumi/pulumi";
import type { BackupPolicyInput, DrillPolicyInput, LoginCredentials, S3Destination, ScheduledDrillOutcome } from "../../engine/index.js";
import { compact, hasUnknown, loadEngine, loginProblem, safeError, say, withDeadline, type EngineModule } from "./runtime.js";

/** What the provider receives (plain values: the host does not accept secrets). */
export interface VaultSnapshotInputs {
  policy: BackupPolicyInput;
  /** Schedule window id (`scheduleWindow(policy.schedule.every).id`); a new window replaces the resource. */
  window: string;
  /** Vault token; absent means the policy's `cluster.auth` (default: VAULT_TOKEN / BAO_TOKEN of the process that runs Pulumi). */
  token?: string;
  /** Login material (AppRole role/secret ID or a JWT), a Pulumi secret: used with the policy's cluster.auth. */
  login?: LoginCredentials;
  deadlineMs?: number;
  retries?: number;
  /** "deep" re-downloads and re-hashes the snapshot on refresh; "quick" checks object and manifest. */
  verifyOnRefresh?: "deep" | "quick";
  /** The `drill` input: replaces the policy's drill section (scheduled drills after the snapshot). */
  drillSettings?: DrillPolicyInput;
}

/** The scheduled drill's verdict as the resource stores it. */
export type DrillOutput = Pick<ScheduledDrillOutcome, "state" | "reason" | "rtoSeconds">;

export type StoredStatus = "good" | "missing" | "incomplete" | "corrupt";

/** What the provider returns and Pulumi stores. No secret ever goes in here. */
export interface VaultSnapshotOutputs {
  cluster: string;
  window: string;
  /** The store's container: the S3 or Cloud Storage bucket, `account/container` on Azure, the directory of a file destination. */
  bucket: string;
  /**
   * The destination the snapshot was written to, as the policy gave it (its type, container,
   * prefix, endpoint: never a credential): refresh opens the same store. Absent in state written
   * before stores other than S3 existed; those name an S3 bucket in `bucket`, `region`, ...
   */
  destination?: Record<string, unknown>;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  key: string;
  manifestKey: string;
  bytes: number;
  sha256: string;
  raftIndex: number;
  raftTerm: number;
  snapshotId: string;
  vaultVersion: string;
  leaderAddr: string;
  takenAt: string;
  lockMode?: string;
  lockUntil?: string;
  /** Last known state of the stored snapshot: set by create ("good") and by every refresh. */
  status: StoredStatus;
  problems: string[];
  checkedAt: string;
  /**
   * Failed backups of the cluster since its last success, from its status object (docs/status.md),
   * read by every refresh beside the snapshot's own `status`; absent when it could not be read.
   */
  clusterConsecutiveFailures?: number;
  /** The start of the cluster's last successful backup, from the same record. */
  clusterLastSuccess?: string;
  /** The policy's off-site copies as this backup wrote them (set by create; refresh checks only the primary's snapshot). */
  copies?: { name: string; ok: boolean; url?: string; error?: string }[];
  /** The scheduled drill after this snapshot (set by create). */
  drill?: DrillOutput;
  verifyOnRefresh: "deep" | "quick";
  deadlineMs: number;
}

const WHO = "VaultSnapshot";
/** Defaults sized for snapshots of a few GiB over a LAN; raise `deadlineMs` for larger ones. */
const DEFAULT_CREATE_DEADLINE_MS = 30 * 60_000;
const WINDOW_ID = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function failure(property: string, reason: string): pulumi.dynamic.CheckFailure {
  return { property, reason };
}

/** The policy with the `drill` input in place of its drill section. */
function policyWithDrill(inputs: Pick<VaultSnapshotInputs, "policy" | "drillSettings">): BackupPolicyInput {
  return inputs.drillSettings === undefined ? inputs.policy : { ...inputs.policy, drill: inputs.drillSettings };
}

/** The destination a created snapshot's outputs name: its own, or the S3 fields of older state. */
function destinationOf(engine: EngineModule, o: Pick<VaultSnapshotOutputs, "destination" | "bucket" | "prefix" | "region" | "endpoint" | "forcePathStyle">) {
  return engine.validatePart(
    engine.destinationSchema,
    o.destination ?? { bucket: o.bucket, prefix: o.prefix, region: o.region, endpoint: o.endpoint, forcePathStyle: o.forcePathStyle },
    ["destination"],
  );
}

/** The container a destination names (bucket, `account/container`, directory); undefined while unknown in preview. */
function containerOf(engine: EngineModule, destination: unknown): string | undefined {
  if (destination === undefined || hasUnknown(destination)) return undefined;
  return engine.destinationContainerOf(engine.validatePart(engine.destinationSchema, destination, ["destination"]));
}

/**
 * The VaultSnapshot provider: one snapshot per schedule window. Every method loads the engine at
 * run time (see runtime.ts) and does no I/O of its own.
 */
export const vaultSnapshotProvider: pulumi.dynamic.ResourceProvider<VaultSnapshotInputs, VaultSnapshotOutputs> = {
  /** Pure validation: check runs in preview and must never talk to Vault or S3. */
  async check(_olds, news) {
    const engine = await loadEngine();
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (news.policy === undefined) failures.push(failure("policy", "is required: the backup policy (cluster, destination, schedule ...)"));
    else if (!hasUnknown(news.policy) && !hasUnknown(news.drillSettings)) {
      // Unknown parts (preview with computed inputs) are validated by the check that precedes create.
      try {
        engine.validatePolicy(policyWithDrill(news), "VaultSnapshot policy");
      } catch (err) {
        failures.push(failure("policy", engine.redact(err instanceof Error ? err.message : String(err))));
      }
    }
    if (!hasUnknown(news.window) && (typeof news.window !== "string" || !WINDOW_ID.test(news.window))) {
      failures.push(failure("window", "must be a schedule window id like '2024-05-01T06:00:00Z' (scheduleWindow(policy.schedule.every).id)"));
    }
    if (news.deadlineMs !== undefined && !hasUnknown(news.deadlineMs) && !(Number.isInteger(news.deadlineMs) && news.deadlineMs >= 10_000)) {
      failures.push(failure("deadlineMs", "must be a whole number of milliseconds, at least 10000"));
    }
    if (news.verifyOnRefresh !== undefined && !hasUnknown(news.verifyOnRefresh) && news.verifyOnRefresh !== "deep" && news.verifyOnRefresh !== "quick") {
      failures.push(failure("verifyOnRefresh", "must be 'deep' (re-download and hash) or 'quick' (object and manifest only)"));
    }
    if (news.token !== undefined && !hasUnknown(news.token) && (typeof news.token !== "string" || news.token.length === 0)) {
      failures.push(failure("token", "must be a non-empty string (leave it out to use VAULT_TOKEN)"));
    }
    const badLogin = loginProblem(news.login);
    if (badLogin) failures.push(failure("login", badLogin));
    if (news.login !== undefined && news.token !== undefined) failures.push(failure("login", "give either token or login, not both"));
    return { inputs: news, failures };
  },

  /**
   * Replace (a new snapshot) when the window moves on, when the destination or cluster changes,
   * or when the last refresh found the stored snapshot missing or damaged. Other settings
   * (nodes, TLS, lock, retention) only shape the next snapshot: no change now.
   */
  async diff(_id, olds, news) {
    const engine = await loadEngine();
    const replaces: string[] = [];
    const dest = (news.policy?.destination ?? {}) as Partial<{ prefix: string }>;
    if (hasUnknown(news.window) || news.window !== olds.window) replaces.push("window");
    if (hasUnknown(news.policy?.cluster?.name) || news.policy?.cluster?.name !== olds.cluster) replaces.push("policy.cluster.name");
    // Another container (or another store type) is another place: a new snapshot belongs there.
    const container = containerOf(engine, news.policy?.destination);
    const oldContainer = olds.destination ? containerOf(engine, olds.destination) : olds.bucket;
    const oldType = (olds.destination?.type as string | undefined) ?? "s3";
    const newType = hasUnknown(news.policy?.destination) ? undefined : ((news.policy?.destination as { type?: string } | undefined)?.type ?? "s3");
    if (container === undefined || container !== oldContainer || newType !== oldType) replaces.push("policy.destination");
    if (hasUnknown(dest.prefix) || (dest.prefix ?? "") !== olds.prefix) replaces.push("policy.destination.prefix");
    if (olds.status !== "good") replaces.push("status");
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  async create(inputs) {
    const engine = await loadEngine();
    try {
      const policy = engine.validatePolicy(policyWithDrill(inputs), "VaultSnapshot policy");
      const deadlineMs = inputs.deadlineMs ?? DEFAULT_CREATE_DEADLINE_MS;
      // Recorded in the cluster's status objects like a `vrb backup` run (success or failure), then
      // the policy's drill when due: the same engine call as the CLI's, in a Node process of its own
      // started with the heap settings a streamed pass needs (the provider's host has Node's defaults).
      // The `token` input, else the policy's cluster.auth with the `login` input's material first.
      const { report, drill, url, failures } = await engine.runRecordedBackupInProcess({
        policy,
        token: inputs.token || undefined,
        credentials: inputs.login,
        retries: inputs.retries ?? policy.backup?.retries ?? engine.DEFAULT_BACKUP_RETRIES,
        deadlineMs,
        progressPrefix: WHO,
      });
      // onCopyFailure fail: a missing copy fails the resource (the primary's snapshot stays, and is named); so does a failed drill.
      if (failures[0]) throw failures[0];
      if (drill?.state === "skipped") say(engine, WHO, `drill of ${url} SKIPPED: ${drill.reason}`);
      const d: Partial<S3Destination> = policy.destination.type === undefined || policy.destination.type === "s3" ? policy.destination : {};
      const outs: VaultSnapshotOutputs = {
        cluster: policy.cluster.name,
        window: inputs.window,
        bucket: report.bucket,
        destination: { ...policy.destination },
        prefix: policy.destination.prefix,
        region: d.region,
        endpoint: d.endpoint,
        forcePathStyle: d.forcePathStyle,
        key: report.key,
        manifestKey: report.manifestKey,
        bytes: report.bytes,
        sha256: report.sha256,
        raftIndex: report.raft.index,
        raftTerm: report.raft.term,
        snapshotId: report.raft.snapshotId,
        vaultVersion: report.vault.version,
        leaderAddr: report.vault.leaderAddr,
        takenAt: report.takenAt,
        lockMode: report.lock?.mode,
        lockUntil: report.lock?.until,
        copies:
          report.destinations.length > 1
            ? report.destinations.slice(1).map((d) => (d.ok ? { name: d.name, ok: true, url: d.url } : { name: d.name, ok: false, error: d.error }))
            : undefined,
        drill: drill && { state: drill.state, reason: drill.reason, ...(drill.rtoSeconds !== undefined ? { rtoSeconds: drill.rtoSeconds } : {}) },
        status: "good",
        problems: [],
        checkedAt: new Date().toISOString(),
        verifyOnRefresh: inputs.verifyOnRefresh ?? "deep",
        deadlineMs,
      };
      return { id: url, outs: compact(outs) };
    } catch (err) {
      throw safeError(engine, err);
    }
  },

  /**
   * Refresh re-checks the object and its manifest. A missing or damaged snapshot is kept in state
   * with `status` and `problems` (so `pulumi refresh` shows the drift instead of silently
   * forgetting it); the next `pulumi up` replaces it with a new snapshot (see diff).
   */
  async read(id, props) {
    const engine = await loadEngine();
    if (!props) throw new Error(`${WHO} ${id}: refresh needs the stored state; import is not supported`);
    try {
      const destination = destinationOf(engine, props);
      const objects = await engine.openStore(destination);
      const where = objects.url(props.key);
      try {
        // A deep check streams the whole snapshot: in a Node of its own, as create's backup.
        const deep = (props.verifyOnRefresh ?? "deep") === "deep";
        const result = await withDeadline(`${WHO} refresh of ${where}`, props.deadlineMs ?? DEFAULT_CREATE_DEADLINE_MS, (signal) =>
          deep
            ? engine.checkStoredSnapshotInProcess({ destination, key: props.key, deep, progressPrefix: WHO, signal })
            : engine.checkStoredSnapshot(new engine.SnapshotStore(objects), props.key),
        );
        if (result.status !== "good") say(engine, WHO, `${where} is ${result.status}: ${result.problems.join("; ")}`);
        // The cluster's backups, beside this one snapshot: best effort, a status read never fails the refresh.
        const backups = await new engine.StatusStore(objects).read(props.cluster).then(
          ({ record }) => record?.operations.backup,
          (err: unknown) => {
            say(engine, WHO, `could not read the status of cluster ${props.cluster}: ${objects.describeError(err)}`);
            return undefined;
          },
        );
        if (backups?.consecutiveFailures) say(engine, WHO, `cluster ${props.cluster}: the last ${backups.consecutiveFailures} backup(s) failed (vrb status)`);
        const outs: VaultSnapshotOutputs = {
          ...props,
          status: result.status,
          problems: result.problems,
          checkedAt: new Date().toISOString(),
          clusterConsecutiveFailures: backups?.consecutiveFailures ?? (backups === undefined ? undefined : 0),
          clusterLastSuccess: backups?.lastSuccess,
        };
        return { id, props: compact(outs) };
      } finally {
        objects.close();
      }
    } catch (err) {
      throw safeError(engine, err);
    }
  },

  /** Forgetting the resource never deletes the snapshot: retention and object lock govern it. */
  async delete(id, props) {
    const engine = await loadEngine();
    say(
      engine,
      WHO,
      `leaving ${id} in place${props.lockUntil ? ` (object-locked until ${props.lockUntil})` : ""}: snapshots are removed only by retention ('vrb prune') and object lock, never by Pulumi`,
    );
  },
};
