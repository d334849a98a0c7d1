// The public API of `vault-raft-backup/engine`: what programs (the vrb CLI, the Pulumi components and
// providers, and your own) may rely on. Each operation comes with its options, its report and the
// errors it throws; everything not listed here is internal and may change in any release.
// docs/architecture.md ("Public API") describes the groups.

// Errors and exit codes
export {
  ConfigError,
  ExitCode,
  IntegrityError,
  InterruptedError,
  OperationError,
  VrbError,
  exitCodeOf,
  exitCodeOfSignal,
  messageOf,
  STOP_SIGNALS,
  type StopSignal,
} from "./errors.js";

// The policy: schema, validation, reading a policy file, schedule windows
export { policySchema, validatePolicy, type BackupPolicy, type BackupPolicyInput, type DrillPolicyInput } from "./policy.js";
export { validatePart } from "./policy/validate-part.js";
export type { AccessOptionsInput } from "./policy/access-options.js";
export { readPolicyYaml } from "./policy-text.js";
export { parseDuration, scheduleWindow } from "./schedule.js";

// Take a backup
export { runBackup, copyFailureOf, DEFAULT_BACKUP_RETRIES, DEFAULT_LEADER_WAIT_MS, type BackupOptions, type BackupReport, type DestinationOutcome } from "./backup/backup.js";
export { DEFAULT_STALL_TIMEOUT_MS } from "./backup/stall-watchdog.js";
export { BOUNDED_HEAP_FLAGS } from "./bounded-heap.js";
export { runRecordedBackup, type RecordedBackup, type RecordedBackupOptions } from "./backup/recorded-backup.js";
export { runRecordedBackupInProcess, checkStoredSnapshotInProcess, runRecordedStagedRestoreInProcess, endProcessWhenOutputCloses } from "./own-process/run.js";
export type { RecordedBackupRequest, RecordedRestoreRequest, StoredSnapshotCheckRequest } from "./own-process/requests.js";
export { recordedStagedRestore, runRecordedStagedRestore, type RecordedRestoreOptions } from "./restore/recorded-restore.js";

// The catalogue of stored snapshots: list, check, verify, prune, RPO, holds, export, unfinished uploads
export { SnapshotStore, damagedNewerThan, parseSnapshotRef, type StoredSnapshot } from "./catalogue/snapshot-store.js";
export { parseSnapshotKey } from "./snapshot/manifest.js";
export { checkStoredSnapshot, type SnapshotHealth } from "./catalogue/check.js";
export { verifyStoredSnapshot, type VerifyReport } from "./catalogue/verify-stored.js";
export { pruneSnapshots, type PruneReport } from "./catalogue/retention.js";
export { recoveryPointStatus, type RecoveryPointStatus } from "./catalogue/rpo.js";
export { setLegalHold, type LegalHoldReport } from "./catalogue/hold.js";
export { exportSnapshot, presignSnapshot, type ExportOptions, type ExportReport, type PresignedUrls } from "./catalogue/export.js";
export { UrlSnapshot, isSnapshotUrl, type RemoteSnapshot } from "./catalogue/url-source.js";
export { DEFAULT_ORPHAN_UPLOAD_AGE, abortOrphanUploads, describeOrphanUploads, findOrphanUploads, type OrphanAbortReport, type OrphanUpload } from "./catalogue/orphan-uploads.js";

// What a snapshot holds: inspect, compare, mount tables
export { inspectSnapshotFile, inspectStoredSnapshot, type InspectReport } from "./snapshot/inventory/inspect.js";
export { diffInventories, inventoryOf, type InventorySubject } from "./snapshot/inventory/diff.js";
export type { MountTableEntry } from "./snapshot/inventory/counter.js";
export { readMountTable } from "./snapshot/inventory/mount-table.js";

// Rebuild or restore a cluster
// (stagedRestore, runDrill and recoverSecrets load their folders on first call: engine/verbs-on-demand.ts)
export { stagedRestore } from "./verbs-on-demand.js";
export { restoreReportOf } from "./restore/restore-run.js";
export type { RestoreMode, RestoreOptions, RestoreReport, RestoreStep } from "./restore/restore.js";
export { loadKeysFile, parseKeysFile, type RestoreKeys } from "./restore/keys.js";
export { checkRestartCommand } from "./restore/restart.js";
export type { RestoreSettingNames } from "./restore/setting-names.js";

// Rehearse a restore in a throwaway cluster
export { runDrill } from "./verbs-on-demand.js";
export type { DrillOptions, DrillReport } from "./drill/drill.js";
export { drillAfterBackup, drillFailureOf, type ScheduledDrillOutcome } from "./drill/scheduled.js";

// Recover single secrets and policies from a snapshot
export { recoverSecrets } from "./verbs-on-demand.js";
export type { RecoverOptions, RecoverReport } from "./recover/recover.js";

// Files stored beside a snapshot (TLS material, seal config, ...)
export { filesOf, filesTar, readVerifiedFiles } from "./files/read-files.js";
export { writeFilesOut } from "./files/write-files.js";

// Status of each cluster's runs, metrics and the exporter
export {
  checkStatus,
  listClusters,
  readClusterStatus,
  readClusterStatuses,
  readEachClusterStatus,
  type ClusterRead,
  type ClusterStatus,
  type ComplianceLockCache,
} from "./status/report.js";
export { recordRun, recordRunIn, runErrorOf, runTargetFor, type RunFacts } from "./status/run.js";
export { StatusStore, statusKeyFor } from "./status/status-store.js";
export { describeVerdict, lastPassedDrillAt } from "./status/drills.js";
export type { DrillVerdict } from "./status/record.js";
export { renderMetrics } from "./status/metrics.js";
export { startExporter } from "./status/exporter.js";

// Where snapshots live: destinations and stores
export { openStore } from "./storage/registry.js";
export { StoreFullError, StoreNoAnswerError } from "./storage/errors.js";
export type { ObjectStore } from "./storage/object-store.js";
export { destinationContainerOf, destinationSchema, type Destination, type DestinationInput, type S3Destination, type StoreType } from "./storage/destination.js";
export { destinationNamed, destinationsOf } from "./storage/named-destination.js";
export { explainS3Error } from "./storage/s3/errors.js";

// Talking to Vault / OpenBao
export { VaultClient, tokenFromEnv } from "./vault/client.js";
export { givenToken } from "./vault/credential-files.js";
export { vaultLogin, withVaultSession } from "./vault/login.js";
export type { VaultSession } from "./vault/vault-session.js";
export type { LoginCredentials } from "./vault/login-settings.js";
export { describeProduct, parseProduct, productOfManifest, type Product } from "./vault/product.js";

// Encryption identities (age, OpenPGP)
export { IDENTITY_PASSPHRASE_ENV, identitySourcesFromFiles, loadIdentities, type Identities } from "./crypto/identities.js";

// Access plans the Pulumi components turn into resources (S3/IAM, Cloud Storage, Azure)
export {
  bucketArnOf,
  bucketPolicyDocument,
  prunerPolicyDocument,
  replicationPolicyDocument,
  replicationTrustPolicyDocument,
  restorerPolicyDocument,
  writerPolicyDocument,
} from "./access/iam.js";
export { accessPlan, bucketPlan, type AccessPlan, type BucketPlan } from "./access/plan.js";
export {
  gcsBucketPlan,
  gcsPrunerPolicyDocument,
  gcsRestorerPolicyDocument,
  gcsWriterPolicyDocument,
  type GcsBucketOptionsInput,
  type GcsBucketPlan,
  type GcsIamPolicyDocument,
} from "./access/gcs-plan.js";
export {
  AZURE_BUILT_IN_ROLES,
  azureBuiltInRoleId,
  azureContainerPlan,
  azureRolesOf,
  type AzureContainerOptionsInput,
  type AzureContainerPlan,
  type AzureRoleDefinition,
} from "./access/azure-plan.js";

// Progress, redaction, sizes, this package and its installed binaries
export { formatBytes, stderrProgress, type Progress } from "./progress.js";
export { redact, registerSecret } from "./redact.js";
export { BYTE_SIZE_FORMS, parseByteSize } from "./vault/fill.js";
export { packageInfo, packageRoot } from "./package-info.js";
export { toolDir, toolVersion, type ToolName } from "./throwaway/binaries.js";
