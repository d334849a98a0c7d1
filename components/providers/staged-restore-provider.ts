import type * as pulumi from "@pulumi/pulumi";
import type { BackupPolicyInput, LoginCredentials, RestoreKeys, RestoreSettingNames } from "../../engine/index.js";
import { compact, hasUnknown, loadEngine, loginProblem, safeError, say, type EngineModule } from "./runtime.js";

export type RestoreMode = "rebuild" | "in-place";

/** What the provider receives (plain values: the host does not accept secrets). */
export interface StagedRestoreInputs {
  /** The backup policy: cluster name, TLS, destination (where the snapshots are), canaries. */
  policy: BackupPolicyInput;
  /** Must equal `policy.cluster.name` whenever this update would restore (create or a new snapshot ref). */
  confirm?: string;
  /** `latest` (newest good snapshot of the cluster), `s3://bucket/key`, or a key in the policy's bucket. */
  snapshot: string;
  mode: RestoreMode;
  /** Target nodes' API addresses; default `policy.cluster.nodes`. The first is restored first. */
  nodes?: string[];
  /**
   * Shamir seal: the ORIGINAL cluster's unseal keys, a list or the text of a keys file
   * (operator-init JSON or one per line). Required for a Shamir rebuild.
   */
  unsealKeys?: string[] | string;
  /**
   * Auto-unseal seal (transit, cloud KMS, PKCS#11): the recovery keys, in the same forms. Optional:
   * nodes unseal themselves; the keys only serve to make a verification token with generate-root.
   */
  recoveryKeys?: string[] | string;
  /**
   * A token of the original cluster: needed for in-place restores; for rebuilds it enables the full
   * verification (voters, autopilot, canaries) where no other token works.
   */
  token?: string;
  /**
   * In-place restores: login material (AppRole role/secret ID or a JWT, with the policy's
   * cluster.auth) to log in to the live cluster instead of `token`; the token is revoked afterwards.
   */
  login?: LoginCredentials;
  /**
   * Client-side encrypted snapshots (policy `encryption`): identity texts — age identity files or
   * armored OpenPGP private keys — and the OpenPGP key's passphrase. Decrypted while downloading.
   */
  identities?: string[];
  identityPassphrase?: string;
  /** Restore into nodes that hold data (in-place over a live cluster). */
  force?: boolean;
  /** Rebuild onto auto-unseal nodes: the command that restarts one node's server ({host}, {node}, {index}); node 1 then needs no token to reload. */
  restartCommand?: string;
  /** KV paths that must read back after the restore; default `policy.verify.canaries`. */
  canaries?: string[];
  /** Deadline of each restore step, in ms (engine default 2 min). */
  stepTimeoutMs?: number;
  /** Deadline of the whole restore, in ms (engine default 30 min): the engine enforces both. */
  deadlineMs?: number;
  /** What the restore's messages call each setting, where the program takes it from elsewhere (StagedRestoreSettingNames). */
  settingNames?: StagedRestoreSettingNames;
}

/**
 * What a program may rename in the restore's messages: by default they name this resource's inputs
 * ("give the unsealKeys input"); a program that fills an input from somewhere else (the DR stack:
 * its stack config) names that instead, so the operator is told what to set. An empty
 * `stepTimeout` says the program offers no such setting (it is then never suggested). Renaming
 * never replaces the restore (diff below).
 */
export type StagedRestoreSettingNames = Partial<
  Pick<RestoreSettingNames, "nodes" | "force" | "inPlace" | "unsealKeys" | "recoveryKeys" | "restartCommand" | "stepTimeout" | "identity" | "token" | "rerun" | "useSnapshot">
>;

/**
 * What the restore's messages name for each setting: this resource's inputs, not `vrb restore`'s
 * flags. A failed create is created again by the next `pulumi up`, and the restore continues from
 * what the nodes hold.
 */
const RESTORE_INPUTS: RestoreSettingNames = {
  nodes: "the nodes input",
  force: "force: true",
  inPlace: "mode: in-place",
  unsealKeys: "the unsealKeys input",
  recoveryKeys: "the recoveryKeys input",
  restartCommand: "the restartCommand input",
  stepTimeout: "the stepTimeoutMs input",
  identity: "the identities input",
  token: "the token input",
  rerun: "run `pulumi up` again",
  useSnapshot: "set the snapshot input to {key} and run `pulumi up` again",
};

/** The restore report as stored by Pulumi. No token or unseal key is ever in here. */
export interface StagedRestoreOutputs {
  ok: boolean;
  cluster: string;
  mode: RestoreMode;
  snapshotRef: string;
  snapshotBucket: string;
  snapshotKey: string;
  snapshotSha256: string;
  snapshotRaftIndex: number;
  snapshotTakenAt: string;
  raftIndex?: number;
  restoredAt: string;
  durationMs: number;
  /** "full" (checked with a token) or "health" (token-free checks only; see notVerified). */
  verification: "full" | "health";
  /** Checks that needed a token none could be had for, each with the command to run it later. */
  notVerified: string[];
  /** The engine's full report (steps, nodes, autopilot, canaries), redacted. */
  report: Record<string, unknown>;
}

const WHO = "StagedRestore";

/** This resource's input names, with the program's own names (settingNames) where it gave one. */
function settingNamesFor(given: StagedRestoreSettingNames | undefined): RestoreSettingNames {
  const names: RestoreSettingNames = { ...RESTORE_INPUTS };
  for (const [key, name] of Object.entries(given ?? {}) as [keyof StagedRestoreSettingNames, unknown][]) {
    if (!(key in RESTORE_INPUTS) || typeof name !== "string") continue;
    if (name) names[key] = name;
    else if (key === "stepTimeout") delete names.stepTimeout;
  }
  return names;
}

/** The keys from either input and either accepted shape; the engine registers them as secrets while parsing. */
function restoreKeysOf(engine: EngineModule, inputs: Pick<StagedRestoreInputs, "unsealKeys" | "recoveryKeys">): RestoreKeys | undefined {
  if (inputs.unsealKeys !== undefined && inputs.recoveryKeys !== undefined) {
    throw new engine.ConfigError("give either unsealKeys (Shamir seal) or recoveryKeys (auto-unseal seal), not both", { field: "recoveryKeys" });
  }
  const [keys, kind] = inputs.unsealKeys !== undefined ? [inputs.unsealKeys, "unseal" as const] : [inputs.recoveryKeys, "recovery" as const];
  if (keys === undefined) return undefined;
  const text = Array.isArray(keys) ? keys.join("\n") : keys;
  return engine.parseKeysFile(text, `StagedRestore ${kind === "unseal" ? "unsealKeys" : "recoveryKeys"}`, kind);
}

/**
 * The StagedRestore provider: a staged restore runs on create, and again (replace) only when the
 * snapshot reference, cluster or mode changes, and only with `confirm` set to the cluster name.
 */
export const stagedRestoreProvider: pulumi.dynamic.ResourceProvider<StagedRestoreInputs, StagedRestoreOutputs> = {
  /** Pure validation, also in preview: never talks to a cluster or to S3. */
  async check(olds, news) {
    const engine = await loadEngine();
    const failures: pulumi.dynamic.CheckFailure[] = [];
    const add = (property: string, reason: string) => failures.push({ property, reason: engine.redact(reason) });
    const inputs: StagedRestoreInputs = { ...news, snapshot: news.snapshot ?? "latest", mode: news.mode ?? "rebuild" };

    let cluster: string | undefined;
    if (inputs.policy === undefined) add("policy", "is required: the backup policy (cluster name, destination ...) of the cluster to restore");
    else if (!hasUnknown(inputs.policy)) {
      try {
        cluster = engine.validatePolicy(inputs.policy, "StagedRestore policy").cluster.name;
      } catch (err) {
        add("policy", err instanceof Error ? err.message : String(err));
      }
    }
    if (!hasUnknown(inputs.mode) && inputs.mode !== "rebuild" && inputs.mode !== "in-place") {
      add("mode", "must be 'rebuild' (fresh nodes) or 'in-place' (restore over the running cluster)");
    }
    if (!hasUnknown(inputs.snapshot)) {
      try {
        engine.parseSnapshotRef(inputs.snapshot, "policy-bucket");
      } catch (err) {
        add("snapshot", err instanceof Error ? err.message : String(err));
      }
    }
    if (!hasUnknown(inputs.unsealKeys) && !hasUnknown(inputs.recoveryKeys)) {
      try {
        restoreKeysOf(engine, inputs);
      } catch (err) {
        add(inputs.unsealKeys !== undefined && inputs.recoveryKeys === undefined ? "unsealKeys" : "recoveryKeys", err instanceof Error ? err.message : String(err));
      }
    }
    if (inputs.restartCommand !== undefined && !hasUnknown(inputs.restartCommand)) {
      try {
        engine.checkRestartCommand(inputs.restartCommand, "restartCommand");
      } catch (err) {
        add("restartCommand", err instanceof Error ? err.message : String(err));
      }
    }
    const badLogin = loginProblem(inputs.login);
    if (badLogin) add("login", badLogin);
    else if (inputs.login !== undefined && !hasUnknown(inputs.mode) && inputs.mode !== "in-place") {
      add("login", "is for in-place restores (it logs in to the live cluster); a rebuild's targets are uninitialised, so give token (a token of the original cluster) or the keys");
    } else if (inputs.login !== undefined && inputs.token !== undefined) add("login", "give either token or login, not both");
    for (const k of ["deadlineMs", "stepTimeoutMs"] as const) {
      const v = inputs[k];
      if (v !== undefined && !hasUnknown(v) && !(Number.isInteger(v) && v >= 1_000)) add(k, "must be a whole number of milliseconds, at least 1000");
    }
    if (inputs.nodes !== undefined && !hasUnknown(inputs.nodes) && (!Array.isArray(inputs.nodes) || inputs.nodes.length === 0)) {
      add("nodes", "must list at least one node address (or leave it out to use policy.cluster.nodes)");
    }

    // The guard. A restore happens on create and on replace (new snapshot ref, cluster or mode);
    // only then is `confirm` required, so a stack can be disarmed after a restore by removing it.
    const creating = olds === undefined || Object.keys(olds).length === 0 || olds.policy === undefined;
    const restoring =
      creating ||
      olds.snapshot !== inputs.snapshot ||
      (olds.mode ?? "rebuild") !== inputs.mode ||
      (olds.policy as BackupPolicyInput | undefined)?.cluster?.name !== inputs.policy?.cluster?.name;
    if (cluster !== undefined && !hasUnknown(inputs.confirm)) {
      if (inputs.confirm !== undefined && inputs.confirm !== cluster) {
        add("confirm", `is '${inputs.confirm}' but must equal the cluster name '${cluster}' (the guard against restoring the wrong cluster)`);
      } else if (restoring && inputs.confirm !== cluster) {
        add(
          "confirm",
          `must be set to '${cluster}' to ${creating ? "restore" : "restore again (the snapshot reference, cluster or mode changed)"}: ` +
            `this replaces all data of cluster '${cluster}' with snapshot '${inputs.snapshot}'`,
        );
      }
    }
    return { inputs, failures };
  },

  /** A new snapshot ref, cluster or mode is a new restore (replace); anything else changes nothing. */
  async diff(_id, olds, news) {
    const replaces: string[] = [];
    if (hasUnknown(news.snapshot) || (news.snapshot ?? "latest") !== olds.snapshotRef) replaces.push("snapshot");
    if (hasUnknown(news.policy?.cluster?.name) || news.policy?.cluster?.name !== olds.cluster) replaces.push("policy.cluster.name");
    if ((news.mode ?? "rebuild") !== olds.mode) replaces.push("mode");
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: true };
  },

  async create(inputs) {
    const engine = await loadEngine();
    try {
      const policy = engine.validatePolicy(inputs.policy, "StagedRestore policy");
      if (inputs.confirm !== policy.cluster.name) {
        // check already refused this; repeated here because create is what touches the cluster.
        throw new engine.ConfigError(`confirm must equal the cluster name '${policy.cluster.name}' to restore it`, { field: "confirm" });
      }
      const keys = restoreKeysOf(engine, inputs);
      if (inputs.token) engine.registerSecret(inputs.token);
      const snapshot = inputs.snapshot ?? "latest";
      const mode = inputs.mode ?? "rebuild";
      // Recorded in the cluster's status object like a `vrb restore` run, success or failure; in a
      // Node process of its own with the CLI's heap settings, as VaultSnapshot's backup (the host
      // has Node's defaults). Secrets reach it over the IPC channel only.
      const report = await engine.runRecordedStagedRestoreInProcess({
        policy,
        snapshot,
        mode,
        nodes: inputs.nodes ?? policy.cluster.nodes,
        keys,
        token: inputs.token || undefined,
        credentials: inputs.login,
        identities: inputs.identities?.map((text, i) => ({ name: `identities[${i}]`, text })),
        identityPassphrase: inputs.identityPassphrase || undefined,
        force: inputs.force,
        restartCommand: inputs.restartCommand,
        canaries: inputs.canaries ?? policy.verify?.canaries,
        timeoutsMs: compact({ step: inputs.stepTimeoutMs, total: inputs.deadlineMs }),
        settingNames: settingNamesFor(inputs.settingNames),
        progressPrefix: WHO,
      });
      // The report is data about the cluster; the round trip through redact is a second lock on the door.
      const redacted = JSON.parse(engine.redact(JSON.stringify(report))) as Record<string, unknown>;
      if (!report.ok) throw new engine.OperationError(`the staged restore of '${policy.cluster.name}' did not end healthy: ${JSON.stringify(redacted.steps ?? [])}`);
      const restoredAt = new Date().toISOString();
      const outs: StagedRestoreOutputs = {
        ok: report.ok,
        cluster: policy.cluster.name,
        mode,
        snapshotRef: snapshot,
        snapshotBucket: report.snapshot.bucket,
        snapshotKey: report.snapshot.key,
        snapshotSha256: report.snapshot.sha256,
        snapshotRaftIndex: report.snapshot.raftIndex,
        snapshotTakenAt: report.snapshot.takenAt,
        raftIndex: report.raftIndex,
        verification: report.verification,
        notVerified: report.notVerified.map((n) => engine.redact(`${n.check}: ${n.command}`)),
        restoredAt,
        durationMs: report.durationMs,
        report: redacted,
      };
      return { id: `${policy.cluster.name}@${restoredAt}`, outs: compact(outs) };
    } catch (err) {
      throw safeError(engine, err);
    }
  },

  /** A restore cannot be undone: removing the resource leaves the cluster as it is. */
  async delete(id) {
    const engine = await loadEngine();
    say(engine, WHO, `forgetting restore ${id}; the restored cluster is left running as it is`);
  },
};
