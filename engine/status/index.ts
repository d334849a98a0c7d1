// Status of each cluster's runs (docs/status.md): the record, its store, the run wrapper, the reader, metrics, the exporter.
export * from "./record.js";
export * from "./store.js";
export * from "./run.js";
export * from "./report.js";
export * from "./metrics.js";
export * from "./exporter.js";
