// Public Pulumi API of `vault-raft-backup`.
export * from "./vault-snapshot.js";
export * from "./staged-restore.js";
export * from "./snapshot-bucket.js";
export * from "./gcs-snapshot-bucket.js";
export * from "./azure-snapshot-container.js";
export * from "./vault-backup-access.js";
export * from "./backup-policy.js";
