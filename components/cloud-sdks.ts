import { createRequire } from "node:module";

// The Pulumi provider SDKs, required by the component that declares their resources instead of
// imported with the components: a program loads only the SDKs of what it declares (a stack of
// `manage: snapshotsOnly` none of them, an S3 bucket only @pulumi/aws). Node's ES module loader,
// asked to `import * as` one of these CommonJS packages, reads every export to fill the namespace,
// and so loads every lazily-loaded part of the provider (all of AWS, all of Google Cloud): ~0.6 s
// of CPU on every `pulumi preview`, `up` and `destroy` before the program registers its first
// resource (docs/architecture.md#start-up). `require` gives the same module instance an `import`
// elsewhere gets, so classes, mocks and the runtime stay shared.
const require = createRequire(import.meta.url);

/** @pulumi/aws: the S3 bucket, its KMS keys and the replication role (SnapshotBucket). */
export function awsSdk(): typeof import("@pulumi/aws") {
  return require("@pulumi/aws") as typeof import("@pulumi/aws");
}

/** @pulumi/gcp: the Cloud Storage bucket, its custom roles and bindings (GcsSnapshotBucket). */
export function gcpSdk(): typeof import("@pulumi/gcp") {
  return require("@pulumi/gcp") as typeof import("@pulumi/gcp");
}

/** The storage and authorization parts of @pulumi/azure-native (AzureSnapshotContainer). */
export function azureSdk(): {
  storage: typeof import("@pulumi/azure-native/storage/index.js");
  authorization: typeof import("@pulumi/azure-native/authorization/index.js");
} {
  return {
    storage: require("@pulumi/azure-native/storage/index.js") as typeof import("@pulumi/azure-native/storage/index.js"),
    authorization: require("@pulumi/azure-native/authorization/index.js") as typeof import("@pulumi/azure-native/authorization/index.js"),
  };
}

/** @pulumi/vault: the policies, roles and auth mounts (VaultBackupAccess), and a stack's explicit provider. */
export function vaultSdk(): typeof import("@pulumi/vault") {
  return require("@pulumi/vault") as typeof import("@pulumi/vault");
}
