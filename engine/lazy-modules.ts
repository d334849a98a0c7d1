import { createRequire } from "node:module";

// CommonJS libraries, loaded with `require` on first use instead of `import`ed with the engine
// (docs/architecture.md#start-up):
// - every `vrb` command imports the engine, and a library a run does not use costs start-up time
//   all the same;
// - Node 20's ES module loader, asked to `import` a CommonJS file of a package without "type",
//   first compiles it to detect its format and then scans it for export names; `require` does
//   neither (the AWS SDK, the largest, has its own module: storage/s3/sdk.ts).
// A synchronous require gives the same module instance an `import` elsewhere gets (classes compare
// equal), also inside constructors and other code that cannot await.
const require = createRequire(import.meta.url);

/** undici (~110 modules, ~80 ms): the Vault client's HTTP and pre-signed URL transfers. */
export function undici(): typeof import("undici") {
  return require("undici") as typeof import("undici");
}

/** tar-stream: the snapshot archive's reader, and the archive of files stored beside a snapshot. */
export function tarStream(): typeof import("tar-stream") {
  return require("tar-stream") as typeof import("tar-stream");
}

/** The YAML parser (~70 modules, ~25 ms): only a policy file needs it. */
export function yaml(): typeof import("yaml") {
  return require("yaml") as typeof import("yaml");
}

/** Azure's identity chain (~3 MiB): only an Azure destination without a connection string or key needs it. */
export function azureIdentity(): typeof import("@azure/identity") {
  return require("@azure/identity") as typeof import("@azure/identity");
}
