/**
 * Vault / OpenBao ACL policies for backup and restore, as HCL text. Pure: the Pulumi component
 * loads exactly this text, and test/integration/vault-access.test.ts proves it on a real server.
 *
 * Unauthenticated endpoints the engine also uses need no rule: `sys/health`, `sys/leader`,
 * `sys/seal-status`. Tokens are issued without the `default` policy, so the two self-service
 * token paths a periodic token needs are granted here instead.
 */

function rule(path: string, capabilities: string[], why: string): string {
  return `# ${why}\npath "${path}" {\n  capabilities = [${capabilities.map((c) => `"${c}"`).join(", ")}]\n}\n`;
}

const tokenSelfService = [
  rule("auth/token/renew-self", ["update"], "keep the periodic token alive"),
  rule("auth/token/lookup-self", ["read"], "let the tool report the token's TTL before a long snapshot"),
  rule("auth/token/revoke-self", ["update"], "give a login token back when the command ends"),
];

/** Take snapshots and run the backup preflight; nothing that writes or reads secrets. */
export function snapshotPolicyHcl(): string {
  return [
    rule("sys/storage/raft/snapshot", ["read"], "stream a snapshot (GET) from the active node"),
    rule("sys/storage/raft/configuration", ["read"], "preflight: Raft peers and the leader"),
    rule("sys/storage/raft/autopilot/state", ["read"], "preflight: cluster health before a backup"),
    rule("sys/mounts", ["read"], "inventory: mount paths and types of secrets engines (uuid -> path; no secret is read)"),
    rule("sys/auth", ["read"], "inventory: mount paths and types of auth methods (uuid -> path)"),
    ...tokenSelfService,
  ].join("\n");
}

export interface RestorePolicyOptions {
  /** Paths the verification after a restore reads (policy `verify.canaries`). */
  canaries?: string[];
}

/** Restore a snapshot (also from another keyring) and verify the result; held by the DR identity only. */
export function restorePolicyHcl(opts: RestorePolicyOptions = {}): string {
  const canaries = [...new Set(opts.canaries ?? [])].sort();
  return [
    rule("sys/storage/raft/snapshot", ["update"], "restore a snapshot taken by this cluster (POST)"),
    rule("sys/storage/raft/snapshot-force", ["update"], "restore a snapshot from another keyring (a rebuild)"),
    rule("sys/storage/raft/configuration", ["read"], "verify: every node is back as a voter"),
    rule("sys/storage/raft/autopilot/state", ["read"], "verify: healthy with the expected failure tolerance"),
    ...canaries.map((c) => rule(c, ["read"], "verify: the canary secret came back")),
    ...tokenSelfService,
  ].join("\n");
}
