import * as pulumi from "@pulumi/pulumi";
import type { BackupPolicyInput, LoginCredentials } from "../engine/index.js";
import { stagedRestoreProvider, type RestoreMode, type StagedRestoreSettingNames } from "./providers/staged-restore-provider.js";

export type { RestoreMode, StagedRestoreSettingNames };

export interface StagedRestoreArgs {
  /** The backup policy of the cluster to restore (cluster name, TLS, destination, canaries). */
  policy: pulumi.Input<BackupPolicyInput>;
  /**
   * The guard: must equal `policy.cluster.name` for any update that restores (the first one, and
   * a new `snapshot`, cluster or mode). Remove it after a restore to disarm the stack.
   */
  confirm?: pulumi.Input<string>;
  /** `latest` (default: the newest good snapshot), `s3://bucket/key`, or a key in the policy's bucket. */
  snapshot?: pulumi.Input<string>;
  /** `rebuild` (default; fresh, uninitialised nodes) or `in-place`. */
  mode?: pulumi.Input<RestoreMode>;
  /** Target nodes; default `policy.cluster.nodes`. */
  nodes?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Shamir-sealed clusters: the ORIGINAL cluster's unseal keys (a list, or keys-file text:
   * operator-init JSON or one per line). Required for a Shamir rebuild. Stored as a secret.
   */
  unsealKeys?: pulumi.Input<string | pulumi.Input<string>[]>;
  /**
   * Auto-unseal clusters (transit, cloud KMS, PKCS#11): the recovery keys, in the same forms.
   * Optional (the nodes unseal themselves); used to make a verification token. Stored as a secret.
   */
  recoveryKeys?: pulumi.Input<string | pulumi.Input<string>[]>;
  /**
   * A token of the original cluster; stored as a secret. Needed for in-place restores; for a
   * rebuild it enables the full verification where the targets do not serve generate-root.
   */
  token?: pulumi.Input<string>;
  /**
   * In-place restores: login material (AppRole role ID + secret ID, or a JWT for the policy's
   * `cluster.auth` jwt/kubernetes role) to log in to the live cluster instead of a `token`. Stored
   * only as a secret. A rebuild's targets are uninitialised (nothing to log in to): give `token`.
   */
  login?: pulumi.Input<LoginCredentials>;
  /** Allow restoring over nodes that hold data. */
  /**
   * Client-side encrypted snapshots: identity texts (age identity files, armored OpenPGP private
   * keys), one of which must be a recipient. Stored as a secret.
   */
  identities?: pulumi.Input<pulumi.Input<string>[]>;
  /** Passphrase of an OpenPGP identity. Stored as a secret. */
  identityPassphrase?: pulumi.Input<string>;
  force?: pulumi.Input<boolean>;
  /**
   * Rebuild onto auto-unseal nodes: the shell command that restarts one node's server, run on the
   * machine running Pulumi, with placeholders {host}, {node}, {index} (e.g. `ssh {host} sudo
   * systemctl restart openbao`). Node 1 is restarted after the snapshot is applied, so no `token`
   * is needed. Never put a secret in it: it is stored in plain text.
   */
  restartCommand?: pulumi.Input<string>;
  canaries?: pulumi.Input<pulumi.Input<string>[]>;
  /** Deadline of each restore step in ms (engine default 2 min). */
  stepTimeoutMs?: pulumi.Input<number>;
  /** Deadline of the whole restore in ms (engine default 30 min); Pulumi's customTimeouts do not apply. */
  deadlineMs?: pulumi.Input<number>;
  /**
   * What the restore's messages call each setting when this program fills the input from somewhere
   * else, e.g. `{ unsealKeys: "the secret config my-dr:unsealKeys" }`; default: the input names
   * ("the unsealKeys input"). Changing it never replaces the restore.
   */
  settingNames?: StagedRestoreSettingNames;
}

/**
 * A staged restore of a Vault / OpenBao Raft cluster as a resource: created = restored. Preview
 * runs only this constructor, check and diff, none of which talks to a cluster.
 */
export class StagedRestore extends pulumi.dynamic.Resource {
  declare readonly ok: pulumi.Output<boolean>;
  declare readonly cluster: pulumi.Output<string>;
  declare readonly mode: pulumi.Output<RestoreMode>;
  declare readonly snapshotRef: pulumi.Output<string>;
  declare readonly snapshotKey: pulumi.Output<string>;
  declare readonly snapshotSha256: pulumi.Output<string>;
  declare readonly snapshotRaftIndex: pulumi.Output<number>;
  declare readonly raftIndex: pulumi.Output<number | undefined>;
  /** "full" (checked with a token) or "health" (token-free checks only; see notVerified). */
  declare readonly verification: pulumi.Output<"full" | "health">;
  /** Checks that needed a token, each with the command to run it later. */
  declare readonly notVerified: pulumi.Output<string[]>;
  declare readonly restoredAt: pulumi.Output<string>;
  declare readonly durationMs: pulumi.Output<number>;
  declare readonly report: pulumi.Output<Record<string, unknown>>;

  constructor(name: string, args: StagedRestoreArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      stagedRestoreProvider,
      name,
      {
        policy: args.policy,
        confirm: args.confirm,
        snapshot: args.snapshot ?? "latest",
        mode: args.mode ?? "rebuild",
        nodes: args.nodes,
        unsealKeys: args.unsealKeys === undefined ? undefined : pulumi.secret(args.unsealKeys),
        recoveryKeys: args.recoveryKeys === undefined ? undefined : pulumi.secret(args.recoveryKeys),
        token: args.token === undefined ? undefined : pulumi.secret(args.token),
        login: args.login === undefined ? undefined : pulumi.secret(args.login),
        identities: args.identities === undefined ? undefined : pulumi.secret(args.identities),
        identityPassphrase: args.identityPassphrase === undefined ? undefined : pulumi.secret(args.identityPassphrase),
        force: args.force,
        restartCommand: args.restartCommand,
        canaries: args.canaries,
        stepTimeoutMs: args.stepTimeoutMs,
        deadlineMs: args.deadlineMs,
        settingNames: args.settingNames,
        ok: undefined,
        cluster: undefined,
        snapshotRef: undefined,
        snapshotKey: undefined,
        snapshotSha256: undefined,
        snapshotRaftIndex: undefined,
        raftIndex: undefined,
        verification: undefined,
        notVerified: undefined,
        restoredAt: undefined,
        durationMs: undefined,
        report: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "unsealKeys", "recoveryKeys", "token", "login", "identities", "identityPassphrase"] },
      "vault-raft-backup",
      "StagedRestore",
    );
  }
}
