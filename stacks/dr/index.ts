// The DR program: `pulumi up -s dr` (from stacks/dr) rebuilds a lost cluster from a snapshot.
//   1. optional per-node reset (`vault-raft-backup-dr:reset`): stop, wipe the Raft data, start;
//   2. StagedRestore from `vault-raft-backup-dr:snapshot` (default latest), after every reset;
//   3. exports of the restore report.
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
//   vault-raft-backup-dr:reset           per-node reset commands (see config.ts)
//   vault-raft-backup-dr:sshPrivateKey   secret; SSH key for `reset.via: remote`
//   vault-raft-backup-dr:identity        secret; client-side encrypted snapshots: an age identity file's text or an
//                                        armored OpenPGP private key (docs/encryption.md)
//   vault-raft-backup-dr:identityPassphrase  secret; the OpenPGP key's passphrase
import { resolve } from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { StagedRestore, type RestoreMode } from "../../components/index.js";
import { localClusterRestoreKeys, requireEnvironment } from "../../engine/index.js";
import { policyForStack } from "../backup/config.js";
import { parseReset, resetCommands } from "./config.js";

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
const sshKey = dr.getSecret("sshPrivateKey");
if (reset?.via === "remote" && !sshKey) {
  throw new Error(
    'Pulumi config vault-raft-backup-dr:sshPrivateKey is required for reset.via remote: pulumi config set --secret vault-raft-backup-dr:sshPrivateKey -- "$(cat key)"',
  );
}

// A reset runs again only when a new restore is due (the same inputs that replace the restore),
// never on a plain re-run of `pulumi up`.
const triggers = [policy.cluster.name, snapshot, mode];
const resets = (reset ? resetCommands(reset) : []).map((c) =>
  reset!.via === "remote"
    ? new command.remote.Command(c.name, {
        connection: { host: c.host, port: c.port, user: c.user, privateKey: sshKey },
        create: c.script,
        triggers,
      })
    : new command.local.Command(c.name, { create: c.script, dir: projectDir, interpreter: ["/bin/sh", "-c"], triggers }),
);

const restore = new StagedRestore(
  `${policy.cluster.name}-restore`,
  {
    policy,
    confirm: dr.get("confirm"),
    snapshot,
    mode,
    nodes,
    unsealKeys,
    recoveryKeys,
    token: dr.getSecret("token"),
    identities: dr.getSecret("identity")?.apply((t) => [t]),
    identityPassphrase: dr.getSecret("identityPassphrase"),
    force: dr.getBoolean("force"),
  },
  { dependsOn: resets },
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
