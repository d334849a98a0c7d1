/**
 * How the caller's user sets each restore option, as the restore's messages name them. A message
 * that says what to give or what to run next must name the user's own knob: `vrb restore`'s flags
 * by default, a provider's inputs when the restore runs under `pulumi up`.
 */
export interface RestoreSettingNames {
  /** The target nodes, node 1 first. */
  nodes: string;
  /** Restore a snapshot of another cluster in place (snapshot-force). */
  force: string;
  /** A roll-back of a live cluster instead of a rebuild. */
  inPlace: string;
  /** The ORIGINAL cluster's unseal keys (Shamir seal). */
  unsealKeys: string;
  /** The ORIGINAL cluster's recovery keys (auto-unseal seal). */
  recoveryKeys: string;
  /** The command that restarts one node's server. */
  restartCommand: string;
  /** The deadline of every wait; absent where the caller's user cannot set it (a scheduled drill: drill.timeBudget bounds the whole). */
  stepTimeout?: string;
  /** The private key (age identity, OpenPGP key) of an encrypted snapshot. */
  identity: string;
  /** Where a token of the original cluster comes from. */
  token: string;
  /** The targets' listeners serve generate-root; absent where the caller has no such setting. */
  unauthedGenerateRoot?: string;
  /** What to do to run the same restore again (it continues from what the nodes hold). */
  rerun: string;
  /**
   * The caller is `vrb restore` itself: where a message says to run the restore again, it spells
   * out the command line (snapshot, nodes, mode) instead of `rerun`.
   */
  rerunIsVrbRestore?: boolean;
  /** What to do to restore another snapshot instead; `{key}` stands for it. */
  useSnapshot: string;
}

/** `vrb restore`'s own flags. */
export const CLI_RESTORE_SETTINGS: RestoreSettingNames = {
  nodes: "--nodes",
  force: "--force",
  inPlace: "--mode in-place",
  unsealKeys: "--unseal-keys-file",
  recoveryKeys: "--recovery-keys-file",
  restartCommand: "--restart-command",
  stepTimeout: "--step-timeout",
  identity: "--identity FILE",
  token: "VAULT_TOKEN, --token-file, or the init JSON with its root_token as --recovery-keys-file",
  unauthedGenerateRoot: "--unauthed-generate-root",
  rerun: "run the same command again",
  rerunIsVrbRestore: true,
  useSnapshot: "run the same command with {key} as the snapshot",
};
