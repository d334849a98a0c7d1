import { SnapshotStore } from "../catalogue/snapshot-store.js";
import { loadIdentities, type IdentitySource } from "../crypto/identities.js";
import { ConfigError } from "../errors.js";
import type { BackupPolicy } from "../policy.js";
import type { Progress } from "../progress.js";
import { recordRun, runTargetFor } from "../status/run.js";
import type { ObjectStore } from "../storage/object-store.js";
import { openStore } from "../storage/registry.js";
import type { LoginCredentials } from "../vault/login-settings.js";
import { vaultLogin } from "../vault/login.js";
import type { VaultSession } from "../vault/vault-session.js";
import type { RestoreKeys } from "./keys.js";
import type { RestoreSettingNames } from "./setting-names.js";
import { stagedRestore } from "./restore.js";
import type { RestoreMode, RestoreOptions, RestoreReport } from "./restore-run.js";

/** A staged restore of a snapshot in the policy's destination, described by plain values only. */
export interface RecordedRestoreOptions {
  policy: BackupPolicy;
  /** `latest`, a key in the destination, or its URL. */
  snapshot: string;
  mode: RestoreMode;
  nodes: string[];
  keys?: RestoreKeys;
  /** A token of the original cluster. */
  token?: string;
  /** In-place only: login material, logged in at the live cluster (renewed during the restore). */
  credentials?: LoginCredentials;
  /** Private keys (age, OpenPGP) of an encrypted snapshot, as text, and the passphrase of the OpenPGP ones. */
  identities?: IdentitySource[];
  identityPassphrase?: string;
  force?: boolean;
  restartCommand?: string;
  canaries?: string[];
  timeoutsMs?: Partial<{ step: number; total: number }>;
  /** How the caller's user sets each option, as messages name them (RestoreOptions.settingNames; default: `vrb restore`'s flags). */
  settingNames?: RestoreSettingNames;
  progress?: Progress;
  signal?: AbortSignal;
}

/**
 * A staged restore as the StagedRestore provider runs it: the snapshot from the policy's
 * destination, the identities loaded, a login at the live cluster for an in-place restore with
 * login material, and the run recorded in the cluster's status object (`operations.restore`,
 * success or failure) as `vrb restore` records it.
 */
export async function runRecordedStagedRestore(opts: RecordedRestoreOptions): Promise<RestoreReport> {
  const { policy, progress } = opts;
  if (opts.credentials && opts.mode !== "in-place") throw new ConfigError("login is for in-place restores; a rebuild needs token or keys", { field: "login" });
  const identities = opts.identities?.length ? await loadIdentities(opts.identities, opts.identityPassphrase || undefined) : undefined;
  const objects = await openStore(policy.destination, { onWaiting: (m) => progress?.warn(m) });
  let session: VaultSession | undefined;
  try {
    if (opts.credentials) {
      // Renewed during the restore, revoked (if it survived the restore) afterwards.
      session = await vaultLogin({ cluster: { ...policy.cluster, nodes: opts.nodes }, credentials: opts.credentials, progress });
    }
    const token = session?.token ?? opts.token;
    return await recordedStagedRestore(policy, objects, {
      mode: opts.mode,
      nodes: opts.nodes,
      store: new SnapshotStore(objects),
      snapshot: opts.snapshot,
      keys: opts.keys,
      token,
      force: opts.force,
      restartCommand: opts.restartCommand,
      canaries: opts.canaries,
      identities,
      progress,
      timeoutsMs: opts.timeoutsMs,
      settingNames: opts.settingNames,
      signal: opts.signal,
    });
  } finally {
    objects.close();
    await session?.close();
  }
}

/**
 * The one composition of a staged restore that `vrb restore` and the StagedRestore provider share:
 * the restore of the policy's cluster with the policy's TLS settings, recorded in the cluster's
 * status object in `objects` (`operations.restore`, success or failure). `objects` is the store
 * the caller opened (and closes); the snapshot comes from `restore.store` or `restore.remote`.
 */
export function recordedStagedRestore(policy: BackupPolicy, objects: ObjectStore, restore: Omit<RestoreOptions, "cluster" | "tls">): Promise<RestoreReport> {
  return recordRun("restore", runTargetFor(policy, objects, restore.progress), () =>
    stagedRestore({
      ...restore,
      cluster: policy.cluster.name,
      tls: { caCert: policy.cluster.caCert, tlsServerName: policy.cluster.tlsServerName },
    }),
  );
}
