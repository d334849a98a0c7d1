// The DR program: `pulumi up -s dr` (from stacks/dr) rebuilds a lost cluster from a snapshot.
//   1. optional (`vault-raft-backup-dr:files`): fetch the configuration files stored with the snapshot
//      once, then install them on every node (the restarted service needs its config and TLS files);
//   2. optional per-node reset (`vault-raft-backup-dr:reset`): stop, wipe the Raft data, start;
//   3. StagedRestore from `vault-raft-backup-dr:snapshot` (default latest), after every reset; with
//      `files`, from exactly the snapshot the files came from (a `latest` resolved once, by the fetch);
//   4. exports of the restore report.
// Config (stacks/dr/Pulumi.*.yaml):
//   vault-raft-backup:policy             the same policy as the backup stack (cluster, destination ...)
//   vault-raft-backup:localEnvironment   directory of `vrb local up`: its addresses (and keys) replace the placeholders
//   vault-raft-backup-dr:confirm         the guard: the cluster name; required for any update that restores
//   vault-raft-backup-dr:snapshot        latest | s3://bucket/key | key (default latest)
//   vault-raft-backup-dr:mode            rebuild (default) | in-place
//   vault-raft-backup-dr:nodes           target node addresses (default policy.cluster.nodes)
//   vault-raft-backup-dr:unsealKeys      secret; Shamir seal: the ORIGINAL cluster's unseal keys (operator-init JSON or one per line)
//   vault-raft-backup-dr:recoveryKeys    secret; auto-unseal seal (transit, KMS, PKCS#11): its recovery keys, same forms;
//                                        optional: the nodes unseal themselves, the keys only make a verification token
//   vault-raft-backup-dr:token           secret; a token of the original cluster: required in-place; for a rebuild it
//                                        enables the full verification (init JSON's root_token works the same)
//   vault-raft-backup-dr:restartCommand  auto-unseal rebuild without a token: the command that restarts one node's
//                                        server ({host}, {node}, {index}), run where Pulumi runs
//   vault-raft-backup-dr:force           true: restore over nodes that hold data (another cluster's snapshot in place)
//   vault-raft-backup-dr:files           put the snapshot's configuration files back on the nodes (see files.ts)
//   vault-raft-backup-dr:reset           per-node reset commands (see config.ts)
//   vault-raft-backup-dr:sshPrivateKey   secret; SSH key for `reset.via: remote` and `files.via: remote`
//   vault-raft-backup-dr:identity        secret; client-side encrypted snapshots: an age identity file's text or an
//                                        armored OpenPGP private key (docs/encryption.md)
//   vault-raft-backup-dr:identityPassphrase  secret; the OpenPGP key's passphrase
import { resolve } from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { StagedRestore, type RestoreMode, type StagedRestoreSettingNames } from "../../components/index.js";
import { IDENTITY_PASSPHRASE_ENV } from "../../engine/index.js";
import { s3DestinationOf } from "../../engine/storage/destination.js";
import { requireEnvironment } from "../../devenv/environment.js";
import { localClusterRestoreKeys } from "../../engine/restore/keys.js";
import { policyForStack } from "../backup/config.js";
import { parseReset, resetCommands } from "./config.js";
import { fetchScript, installCommands, parseFiles, snapshotUsed } from "./files.js";

const shared = new pulumi.Config("vault-raft-backup");
const dr = new pulumi.Config("vault-raft-backup-dr");
const localDir = shared.get("localEnvironment");
// Relative paths in stack config are relative to stacks/dr (where Pulumi.yaml is), whatever the cwd.
const projectDir = pulumi.runtime.getRootDirectory() || process.cwd();
const local = localDir ? requireEnvironment(resolve(projectDir, localDir)) : undefined;
const policy = policyForStack(shared.requireObject<unknown>("policy"), local);

const snapshot = dr.get("snapshot") ?? "latest";
const mode = (dr.get("mode") ?? "rebuild") as RestoreMode;
const nodes = dr.getObject<string[]>("nodes") ?? policy.cluster.nodes;
// The local environment keeps the keys of its throwaway cluster (as its init JSON would have them);
// anywhere else they are secret config: unsealKeys for a Shamir seal, recoveryKeys for auto-unseal.
const localKeys = local?.keys ? localClusterRestoreKeys(local.keys) : undefined;
const localInitJson = (kind: "unseal" | "recovery") =>
  localKeys?.kind === kind
    ? pulumi.secret(JSON.stringify({ [`${kind === "unseal" ? "unseal" : "recovery"}_keys_b64`]: localKeys.keys, root_token: localKeys.rootToken }))
    : undefined;
const unsealKeys = dr.getSecret("unsealKeys") ?? localInitJson("unseal");
const recoveryKeys = dr.getSecret("recoveryKeys") ?? localInitJson("recovery");

const rawReset = dr.getObject<unknown>("reset");
const reset = rawReset === undefined ? undefined : parseReset(rawReset);
const rawFiles = dr.getObject<unknown>("files");
const files = rawFiles === undefined ? undefined : parseFiles(rawFiles, reset);
const sshKey = dr.getSecret("sshPrivateKey");
for (const [what, via] of [
  ["reset", reset?.via],
  ["files", files?.via],
] as const) {
  if (via === "remote" && !sshKey) {
    throw new Error(
      `Pulumi config vault-raft-backup-dr:sshPrivateKey is required for ${what}.via remote: pulumi config set --secret vault-raft-backup-dr:sshPrivateKey -- "$(cat key)"`,
    );
  }
}
const identity = dr.getSecret("identity");
const identityPassphrase = dr.getSecret("identityPassphrase");

// A reset (and the files step) runs again only when a new restore is due (the same inputs that
// replace the restore), never on a plain re-run of `pulumi up`.
const triggers = [policy.cluster.name, snapshot, mode];

// The files: fetched once here (never written to this machine's disk; stdout is a secret output),
// installed on every node from the fetch's stdout. The restore takes the snapshot the fetch
// reports, so a backup that lands in between cannot pair one snapshot's files with another's data;
// the fetch keeps that ref in state, so a newer backup does not replace the restore either.
let restoreSnapshot: pulumi.Input<string> = snapshot;
let installs: pulumi.Resource[] = [];
if (files) {
  const dest = s3DestinationOf(policy.destination, "the DR stack's files step (it fetches with the AWS SDK)");
  const fetch = new command.local.Command(
    "files-fetch",
    {
      create: fetchScript(files, { ref: snapshot, bucket: dest.bucket, prefix: dest.prefix, cluster: policy.cluster.name, identity: identity !== undefined }),
      dir: projectDir,
      interpreter: ["/bin/sh", "-c"],
      // The identity text on stdin, its passphrase in the environment: never in the command string.
      stdin: identity,
      // stdout is the decrypted files (base64): never shown as the step's progress, only kept as a
      // secret output; stderr (progress and the snapshot used) is shown.
      logging: command.types.enums.local.Logging.Stderr,
      environment: {
        ...(dest.endpoint ? { AWS_ENDPOINT_URL_S3: dest.endpoint } : {}),
        ...(dest.region ? { AWS_REGION: dest.region } : {}),
        ...(identityPassphrase ? { [IDENTITY_PASSPHRASE_ENV]: identityPassphrase } : {}),
      },
      triggers,
    },
    { additionalSecretOutputs: ["stdout", "stdin", "environment"] },
  );
  restoreSnapshot = fetch.stderr.apply(snapshotUsed);
  installs = installCommands(files).map((c) =>
    files.via === "remote"
      ? new command.remote.Command(
          c.name,
          { connection: { host: c.host, port: c.port, user: c.user, privateKey: sshKey }, create: c.script, stdin: fetch.stdout, triggers },
          { additionalSecretOutputs: ["stdout", "stdin"] },
        )
      : new command.local.Command(
          c.name,
          { create: c.script, dir: projectDir, interpreter: ["/bin/sh", "-c"], stdin: fetch.stdout, triggers },
          { additionalSecretOutputs: ["stdout", "stdin"] },
        ),
  );
}

const resets = (reset ? resetCommands(reset) : []).map((c) =>
  reset!.via === "remote"
    ? new command.remote.Command(
        c.name,
        {
          connection: { host: c.host, port: c.port, user: c.user, privateKey: sshKey },
          create: c.script,
          triggers,
        },
        { dependsOn: installs },
      )
    : new command.local.Command(c.name, { create: c.script, dir: projectDir, interpreter: ["/bin/sh", "-c"], triggers }, { dependsOn: installs }),
);

// The restore's messages name this stack's config keys, which the operator sets, not the
// StagedRestore inputs the program fills from them; no step deadline is configurable here.
const DR_SETTING_NAMES: StagedRestoreSettingNames = {
  nodes: "the config vault-raft-backup-dr:nodes",
  force: "vault-raft-backup-dr:force true",
  inPlace: "vault-raft-backup-dr:mode in-place",
  unsealKeys: "the secret config vault-raft-backup-dr:unsealKeys",
  recoveryKeys: "the secret config vault-raft-backup-dr:recoveryKeys",
  restartCommand: "the config vault-raft-backup-dr:restartCommand",
  stepTimeout: "",
  identity: "the secret config vault-raft-backup-dr:identity",
  token: "the secret config vault-raft-backup-dr:token",
  useSnapshot: "pulumi config set vault-raft-backup-dr:snapshot {key}, then run `pulumi up` again",
};

const restore = new StagedRestore(
  `${policy.cluster.name}-restore`,
  {
    policy,
    confirm: dr.get("confirm"),
    snapshot: restoreSnapshot,
    mode,
    nodes,
    unsealKeys,
    recoveryKeys,
    token: dr.getSecret("token"),
    restartCommand: dr.get("restartCommand"),
    identities: identity?.apply((t) => [t]),
    identityPassphrase,
    force: dr.getBoolean("force"),
    settingNames: DR_SETTING_NAMES,
  },
  { dependsOn: [...installs, ...resets] },
);

export const cluster = restore.cluster;
export const ok = restore.ok;
export const snapshotKey = restore.snapshotKey;
export const snapshotSha256 = restore.snapshotSha256;
export const snapshotRaftIndex = restore.snapshotRaftIndex;
export const raftIndex = restore.raftIndex;
export const verification = restore.verification;
export const notVerified = restore.notVerified;
export const restoredAt = restore.restoredAt;
export const durationMs = restore.durationMs;
export const report = restore.report;
export const resetNodes = resets.length;
export const filesNodes = installs.length;
