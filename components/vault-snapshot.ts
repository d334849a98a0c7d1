import * as pulumi from "@pulumi/pulumi";
import { scheduleWindow, type BackupPolicyInput, type DrillPolicyInput, type LoginCredentials } from "../engine/index.js";
import { vaultSnapshotProvider, type DrillOutput, type StoredStatus } from "./providers/vault-snapshot-provider.js";

export interface VaultSnapshotArgs {
  /** The backup policy (same schema as config `vault-raft-backup:policy`); validated by `check`. */
  policy: pulumi.Input<BackupPolicyInput>;
  /**
   * Vault token allowed to read `sys/storage/raft/snapshot`. Stored only as a secret (it is
   * wrapped with `pulumi.secret` here). Leave it out to use the policy's `cluster.auth`: by
   * default VAULT_TOKEN / BAO_TOKEN of the process that runs Pulumi, or a login (AppRole, JWT,
   * Kubernetes, cert; docs/auth.md) whose credentials stay in files or that process's environment.
   */
  token?: pulumi.Input<string>;
  /**
   * Login material as values (e.g. from Pulumi config secrets or another resource): an AppRole
   * role ID and secret ID, or a JWT for the policy's `cluster.auth` jwt/kubernetes role. Stored only
   * as a secret (wrapped with `pulumi.secret` here). The provider logs in with it through the
   * engine's login module, renews the token during the snapshot and revokes it afterwards.
   */
  login?: pulumi.Input<LoginCredentials>;
  /**
   * The schedule window this snapshot belongs to. Default: the window of `policy.schedule.every`
   * that contains the moment the program runs. A new window replaces the resource (a new
   * snapshot); two `pulumi up` runs within one window take one snapshot.
   */
  window?: pulumi.Input<string>;
  /** Deadline of create and refresh in ms (default 30 min): Pulumi's customTimeouts do not apply. */
  deadlineMs?: pulumi.Input<number>;
  /** Retries of transient Vault/S3 failures (a leader change mid-stream) during the backup; default policy backup.retries, else 2. */
  retries?: pulumi.Input<number>;
  /** Refresh re-downloads and hashes the snapshot ("deep", default) or checks object + manifest ("quick"). */
  verifyOnRefresh?: pulumi.Input<"deep" | "quick">;
  /**
   * Scheduled drills (the policy's `drill` section, which this replaces): when no drill passed
   * within `every`, create restores the new snapshot into a throwaway local node and checks it; a
   * failed drill fails the resource (the snapshot stays in the bucket), a skipped one is reported
   * in `drill` (docs/restore.md, "Scheduled drills"). Only file paths: the keys stay in their files.
   */
  drill?: pulumi.Input<DrillPolicyInput>;
}

/** The window containing `now` for a policy, or undefined when the policy's schedule is invalid (check reports it). */
export function windowForPolicy(policy: BackupPolicyInput, now: Date = new Date()): string | undefined {
  try {
    return scheduleWindow(policy.schedule?.every ?? "6h", now).id;
  } catch {
    return undefined;
  }
}

/**
 * One Raft snapshot of a Vault / OpenBao cluster per schedule window, streamed to S3 with its
 * manifest by the engine. Refresh re-checks the stored object; deleting the resource never
 * deletes the snapshot.
 */
export class VaultSnapshot extends pulumi.dynamic.Resource {
  declare readonly cluster: pulumi.Output<string>;
  declare readonly window: pulumi.Output<string>;
  declare readonly bucket: pulumi.Output<string>;
  declare readonly key: pulumi.Output<string>;
  declare readonly manifestKey: pulumi.Output<string>;
  declare readonly bytes: pulumi.Output<number>;
  declare readonly sha256: pulumi.Output<string>;
  declare readonly raftIndex: pulumi.Output<number>;
  declare readonly raftTerm: pulumi.Output<number>;
  declare readonly vaultVersion: pulumi.Output<string>;
  declare readonly takenAt: pulumi.Output<string>;
  declare readonly lockUntil: pulumi.Output<string | undefined>;
  declare readonly status: pulumi.Output<StoredStatus>;
  declare readonly problems: pulumi.Output<string[]>;
  /** Failed backups of the cluster since its last success (its status object, read by refresh). */
  declare readonly clusterConsecutiveFailures: pulumi.Output<number | undefined>;
  declare readonly clusterLastSuccess: pulumi.Output<string | undefined>;
  /** The policy's off-site copies as the backup wrote them: name, ok, and the copy's URL or error. */
  declare readonly copies: pulumi.Output<{ name: string; ok: boolean; url?: string; error?: string }[] | undefined>;
  /** What the scheduled drill after this snapshot found: passed (with the RTO), skipped (why), not due; absent without a drill section. */
  declare readonly drill: pulumi.Output<DrillOutput | undefined>;

  constructor(name: string, args: VaultSnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    // Nothing here talks to Vault or S3: preview runs only this constructor, check and diff.
    const window = args.window ?? pulumi.output(args.policy).apply((p) => windowForPolicy(p) ?? "invalid schedule.every");
    super(
      vaultSnapshotProvider,
      name,
      {
        policy: args.policy,
        window,
        token: args.token === undefined ? undefined : pulumi.secret(args.token),
        login: args.login === undefined ? undefined : pulumi.secret(args.login),
        deadlineMs: args.deadlineMs,
        retries: args.retries,
        verifyOnRefresh: args.verifyOnRefresh,
        drillSettings: args.drill,
        // Output properties, filled by the provider.
        cluster: undefined,
        bucket: undefined,
        key: undefined,
        manifestKey: undefined,
        bytes: undefined,
        sha256: undefined,
        raftIndex: undefined,
        raftTerm: undefined,
        vaultVersion: undefined,
        takenAt: undefined,
        lockUntil: undefined,
        status: undefined,
        problems: undefined,
        clusterConsecutiveFailures: undefined,
        clusterLastSuccess: undefined,
        copies: undefined,
        drill: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "token", "login"] },
      "vault-raft-backup",
      "VaultSnapshot",
    );
  }
}
