import { createRequire } from "node:module";

// Libraries a CLI run may not need, loaded on first use instead of when the engine is imported:
// every `vrb` command imports the engine, and these cost start-up time whether used or not
// (docs/architecture.md#start-up). Both are CommonJS, so a synchronous require gives the same
// module instance an `import` elsewhere gets (classes compare equal), also inside constructors
// and other code that cannot await.
const require = createRequire(import.meta.url);

/** undici (~110 modules, ~80 ms): the Vault client's HTTP and pre-signed URL transfers. */
export function undici(): typeof import("undici") {
  return require("undici") as typeof import("undici");
}

/** The YAML parser (~70 modules, ~25 ms): only a policy file needs it. */
export function yaml(): typeof import("yaml") {
  return require("yaml") as typeof import("yaml");
}

/** Azure's identity chain (~3 MiB): only an Azure destination without a connection string or key needs it. */
export function azureIdentity(): typeof import("@azure/identity") {
  return require("@azure/identity") as typeof import("@azure/identity");
}
