// The storage seam (docs/architecture.md): the ObjectStore interface, the destination schemas, the
// errors every store throws alike, and openStore, the one way to get a store.
export * from "./object-store.js";
export * from "./destination.js";
export * from "./named-destination.js";
export * from "./errors.js";
export * from "./registry.js";
export * from "./s3/index.js";
export * from "./label.js";
