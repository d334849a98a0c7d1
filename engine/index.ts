// Public engine API (`vault-raft-backup/engine`). Everything the CLI, the Pulumi providers and
// the tests do goes through these exports.
export * from "./errors.js";
export * from "./redact.js";
export * from "./progress.js";
export * from "./wait.js";
export * from "./vault/client.js";
export * from "./vault/operations.js";
export * from "./s3/client.js";
export * from "./local/tools.js";
export * from "./local/ports.js";
export * from "./local/process.js";
export * from "./local/cluster.js";
export * from "./local/s3server.js";
export * from "./local/environment.js";
export * from "./policy.js";
export * from "./schedule.js";
export * from "./vault/kv.js";
export * from "./snapshot/manifest.js";
export * from "./snapshot/archive.js";
export * from "./snapshot/store.js";
export * from "./snapshot/verify.js";
export * from "./restore/index.js";
