// Public Pulumi API of `vault-raft-backup`.
export * from "./vault-snapshot.js";
export * from "./staged-restore.js";
