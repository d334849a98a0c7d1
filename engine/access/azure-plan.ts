import { z } from "zod";
import { ConfigError } from "../errors.js";
import { validatePart, type BackupPolicy, type BucketOptionsInput } from "../policy.js";
import { azureDestinationOf } from "../storage/destination.js";
import { sharedLifecyclePlan } from "./gcs-plan.js";
import { DEFAULT_LOCK, type LockMode } from "./plan.js";

/**
 * What the Pulumi `AzureSnapshotContainer` builds for a `type: azure` destination, resolved from the
 * policy (defaults filled, cross-field rules checked, errors naming the field), and the Azure RBAC
 * documents it assigns. No Pulumi here: the component renders exactly this.
 */

const guid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Azure-only settings of the component (the policy's `bucket:` section holds the lifecycle shared with S3). */
export const azureContainerOptionsSchema = z
  .object({
    subscriptionId: z
      .string({ required_error: "is required; the role definitions and the container scope live in a subscription (az account show --query id)" })
      .regex(guid, "must be a subscription id (a GUID)"),
    resourceGroupName: z
      .string({ required_error: "is required; name the resource group of the storage account" })
      .regex(/^[-\w.()]{1,90}$/, "must be a resource group name: up to 90 letters, digits, '-', '_', '.', '(' and ')'"),
    location: z
      .string()
      .regex(/^[a-z0-9]+$/, "must be an Azure region such as 'westeurope'")
      .optional()
      .describe("Region of the account (required when it is created)."),
    sku: z
      .enum(["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"], {
        errorMap: () => ({ message: "must be one of Standard_LRS, Standard_ZRS, Standard_GRS, Standard_RAGRS, Standard_GZRS, Standard_RAGZRS" }),
      })
      .optional()
      .describe("Redundancy of a created account (default Standard_ZRS)."),
    disableSharedKeyAccess: z.boolean().optional().describe("true: only Entra ID identities may use the account (no account key, no key-signed SAS)."),
    softDeleteDays: z
      .number()
      .int()
      .min(1, "must be between 1 and 365 days")
      .max(365, "must be between 1 and 365 days")
      .optional()
      .describe("Deleted blobs and containers stay restorable this many days (default 7)."),
    writerRole: z
      .enum(["custom", "contributor"], { errorMap: () => ({ message: "must be custom (no delete) or contributor (Storage Blob Data Contributor, which can delete)" }) })
      .default("custom"),
    roleNamePrefix: z
      .string()
      .regex(/^[A-Za-z0-9 _-]{1,40}$/, "must be letters, digits, spaces, '_' and '-', at most 40 characters")
      .default("vrb")
      .describe("Prefix of the custom role names (unique per tenant)."),
    writerPrincipalIds: z.array(z.string().regex(guid, "must be an Entra ID object id (a GUID)")).default([]),
    restorerPrincipalIds: z.array(z.string().regex(guid, "must be an Entra ID object id (a GUID)")).default([]),
    prunerPrincipalIds: z
      .array(z.string().regex(guid, "must be an Entra ID object id (a GUID)"))
      .default([])
      .describe("Who applies retention (vrb prune): the pruner and status-record roles on the container."),
    customerManagedKey: z
      .object({
        keyUri: z
          .string()
          .regex(
            /^https:\/\/[a-z0-9-]+\.(vault|managedhsm)\.azure\.net\/keys\/[A-Za-z0-9-]+(\/[0-9a-f]{32})?\/?$/,
            "must be a Key Vault key URI: https://VAULT.vault.azure.net/keys/NAME",
          ),
        requireInfrastructureEncryption: z.boolean().default(false),
        keyVaultId: z
          .string()
          .regex(
            /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/[^/]+$/i,
            "must be a key vault's resource id: /subscriptions/S/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/NAME",
          )
          .optional()
          .describe("The key's vault: the created account's identity gets Key Vault Crypto Service Encryption User on it."),
      })
      .strict()
      .optional()
      .describe("Encrypt every blob with this key, through the encryption scope named in destination.encryptionScope."),
  })
  .strict();

export type AzureContainerOptionsInput = z.input<typeof azureContainerOptionsSchema>;

/** An Azure custom role, in the JSON form `az role definition create` takes. */
export interface AzureRoleDefinition {
  Name: string;
  Description: string;
  Actions: string[];
  NotActions: string[];
  DataActions: string[];
  NotDataActions: string[];
  AssignableScopes: string[];
}

export interface AzureRoleAssignment {
  /** Which principal list it is for: the backup job, the restorer or the retention job. */
  for: "writer" | "restorer" | "pruner";
  /** A built-in role's definition id, or the name of one of the plan's custom roles. */
  role: { builtIn: string; id: string } | { custom: "writer" | "pruner" | "statusRecord" };
  scope: string;
  /** An Azure ABAC condition (version 2.0) on the data actions. */
  condition?: string;
}

export interface AzureContainerPlan {
  account: {
    /** false: the account exists; only the container, its policy and the roles are made. */
    create: boolean;
    name: string;
    resourceGroupName: string;
    location?: string;
    sku: string;
    allowSharedKeyAccess: boolean;
    softDeleteDays: number;
  };
  container: string;
  prefix: string;
  subscriptionId: string;
  /** The container's default version-level immutability policy (the policy's objectLock, else GOVERNANCE 30 days). */
  lock: { mode: LockMode; days: number };
  expireAfterDays: number;
  noncurrentExpireAfterDays: number;
  encryptionScope?: { name: string; keyUri?: string; requireInfrastructureEncryption: boolean; keyVaultId?: string };
  writerRole: "custom" | "contributor";
  roles: { writer?: AzureRoleDefinition; pruner: AzureRoleDefinition; statusRecord: AzureRoleDefinition };
  /** The container's resource id: every assignment is scoped to it, never to the account. */
  containerScope: string;
  assignments: AzureRoleAssignment[];
  writerPrincipalIds: string[];
  restorerPrincipalIds: string[];
  prunerPrincipalIds: string[];
}

const BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";
export const AZURE_BLOB_ACTIONS = {
  containerRead: "Microsoft.Storage/storageAccounts/blobServices/containers/read",
  read: `${BLOBS}/read`,
  write: `${BLOBS}/write`,
  add: `${BLOBS}/add/action`,
  delete: `${BLOBS}/delete`,
  deleteVersion: `${BLOBS}/deleteBlobVersion/action`,
  permanentDelete: `${BLOBS}/permanentDelete/action`,
  runAsSuperUser: `${BLOBS}/immutableStorage/runAsSuperUser/action`,
} as const;

/** Built-in role definition ids (the same in every tenant). */
export const AZURE_BUILT_IN_ROLES = {
  storageBlobDataContributor: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
  storageBlobDataReader: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
  keyVaultCryptoServiceEncryptionUser: "e147488a-f6f5-4113-8e2d-b22465e65bf6",
} as const;

function fail(field: string, text: string): never {
  throw new ConfigError(`policy: ${field} ${text}`, { field });
}

export function azureBuiltInRoleId(subscriptionId: string, id: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${id}`;
}

/**
 * Writes (and block commits) only on the status records under the prefix. ABAC can match the blob's
 * path, not the request's preconditions: it cannot insist the write be conditional (If-Match).
 */
export function azureStatusRecordCondition(prefix: string): string {
  return onlyOnPaths([AZURE_BLOB_ACTIONS.write, AZURE_BLOB_ACTIONS.add], `${prefix}*/vrb-status.json`);
}

/** An ABAC condition (version 2.0) that allows `actions` only on blobs whose path is StringLike `pattern`. */
function onlyOnPaths(actions: readonly string[], pattern: string): string {
  const none = actions.map((action) => `!(ActionMatches{'${action}'})`).join(" AND ");
  return `((${none}) OR (@Resource[${BLOBS}:path] StringLike '${pattern}'))`;
}

/**
 * `actions` only on blobs under the prefix, so an identity for one prefix cannot write or delete
 * what another environment keeps in the same container: the writer's writes (and the locks it
 * sets), the pruner's deletes. Each of these actions carries the blob's path. Undefined without a
 * prefix: the container is the environment's.
 */
export function azurePrefixCondition(prefix: string, actions: readonly string[]): string | undefined {
  return prefix ? onlyOnPaths(actions, `${prefix}*`) : undefined;
}

export function azureContainerPlan(
  policy: Pick<BackupPolicy, "destination" | "objectLock" | "retention"> & { bucket?: BucketOptionsInput; azure?: AzureContainerOptionsInput },
): AzureContainerPlan {
  const destination = azureDestinationOf(policy.destination, "the AzureSnapshotContainer component (an Azure Blob container)");
  const lifecycle = sharedLifecyclePlan(policy, "Azure Blob Storage");
  const opts = validatePart(azureContainerOptionsSchema, policy.azure ?? {}, ["azure"]);
  // The status-record condition quotes the prefix in ABAC, where ' ends a string and * is a wildcard.
  if (/['*]/.test(destination.prefix)) fail("destination.prefix", "must not contain ' or * on Azure (role conditions match the prefix literally); rename it");
  if (lifecycle.create && !opts.location) fail("azure.location", "is required when the storage account is created (bucket.create); name a region such as 'westeurope'");
  if (!lifecycle.create) {
    for (const k of ["location", "sku", "disableSharedKeyAccess", "softDeleteDays"] as const) {
      if (opts[k] !== undefined) fail(`azure.${k}`, "has no effect with bucket.create: false (the storage account exists and is not managed here); remove it");
    }
  }
  if (opts.customerManagedKey && !destination.encryptionScope) {
    fail("destination.encryptionScope", "is required with azure.customerManagedKey: name the encryption scope the key is used through, e.g. 'vrbcmk'");
  }
  if (opts.customerManagedKey?.keyVaultId && !lifecycle.create) {
    fail(
      "azure.customerManagedKey.keyVaultId",
      "needs bucket.create: the grant goes to the identity of an account created here; grant an existing account's identity yourself and remove it",
    );
  }
  if (destination.encryptionScope && !/^[a-zA-Z0-9]{3,63}$/.test(destination.encryptionScope)) {
    fail("destination.encryptionScope", "must be 3-63 letters and digits (an Azure encryption scope name)");
  }
  if (opts.writerRole === "contributor" && policy.objectLock) {
    fail(
      "azure.writerRole",
      "'contributor' cannot set the per-version immutability policies objectLock asks for (that needs immutableStorage/runAsSuperUser); use 'custom' or remove objectLock",
    );
  }
  const lock = policy.objectLock ?? DEFAULT_LOCK;
  const group = `/subscriptions/${opts.subscriptionId}/resourceGroups/${opts.resourceGroupName}`;
  const containerScope = `${group}/providers/Microsoft.Storage/storageAccounts/${destination.accountName}/blobServices/default/containers/${destination.container}`;
  const a = AZURE_BLOB_ACTIONS;
  const writer: AzureRoleDefinition | undefined =
    opts.writerRole === "custom"
      ? {
          Name: `${opts.roleNamePrefix} snapshot writer ${destination.accountName} ${destination.container}`,
          Description: "vault-raft-backup: write and read back snapshots and the status record; never delete",
          Actions: [a.containerRead],
          NotActions: [],
          DataActions: [a.read, a.write, a.add, ...(policy.objectLock ? [a.runAsSuperUser] : [])],
          NotDataActions: [],
          AssignableScopes: [group],
        }
      : undefined;
  // Deletes what retention drops and the immutability policies allow; no write, and no
  // runAsSuperUser, so it can neither replace a snapshot nor touch a version's immutability policy.
  const pruner: AzureRoleDefinition = {
    Name: `${opts.roleNamePrefix} snapshot pruner ${destination.accountName} ${destination.container}`,
    Description: "vault-raft-backup: list, read and delete snapshots past retention (vrb prune); never write or unlock them",
    Actions: [a.containerRead],
    NotActions: [],
    DataActions: [a.read, a.delete, a.deleteVersion],
    NotDataActions: [],
    AssignableScopes: [group],
  };
  const statusRecord: AzureRoleDefinition = {
    Name: `${opts.roleNamePrefix} status record writer ${destination.accountName} ${destination.container}`,
    Description: "vault-raft-backup: write blobs; assigned only with a condition that limits it to the status records",
    Actions: [],
    NotActions: [],
    DataActions: [a.write, a.add],
    NotDataActions: [],
    AssignableScopes: [group],
  };
  const underPrefix = (actions: string[]) => {
    const condition = azurePrefixCondition(destination.prefix, actions);
    return condition ? { condition } : {};
  };
  const assignments: AzureRoleAssignment[] = [
    writer
      ? { for: "writer", role: { custom: "writer" }, scope: containerScope, ...underPrefix(writer.DataActions.filter((d) => d !== a.read)) }
      : { for: "writer", role: { builtIn: "Storage Blob Data Contributor", id: AZURE_BUILT_IN_ROLES.storageBlobDataContributor }, scope: containerScope },
    { for: "restorer", role: { builtIn: "Storage Blob Data Reader", id: AZURE_BUILT_IN_ROLES.storageBlobDataReader }, scope: containerScope },
    { for: "restorer", role: { custom: "statusRecord" }, scope: containerScope, condition: azureStatusRecordCondition(destination.prefix) },
    { for: "pruner", role: { custom: "pruner" }, scope: containerScope, ...underPrefix([a.delete, a.deleteVersion]) },
    { for: "pruner", role: { custom: "statusRecord" }, scope: containerScope, condition: azureStatusRecordCondition(destination.prefix) },
  ];
  return {
    account: {
      create: lifecycle.create,
      name: destination.accountName,
      resourceGroupName: opts.resourceGroupName,
      location: opts.location,
      sku: opts.sku ?? "Standard_ZRS",
      allowSharedKeyAccess: !(opts.disableSharedKeyAccess ?? false),
      softDeleteDays: opts.softDeleteDays ?? 7,
    },
    container: destination.container,
    prefix: destination.prefix,
    subscriptionId: opts.subscriptionId,
    lock: { mode: lock.mode, days: lock.days },
    expireAfterDays: lifecycle.expireAfterDays,
    noncurrentExpireAfterDays: lifecycle.noncurrentExpireAfterDays,
    encryptionScope: destination.encryptionScope
      ? {
          name: destination.encryptionScope,
          keyUri: opts.customerManagedKey?.keyUri,
          requireInfrastructureEncryption: opts.customerManagedKey?.requireInfrastructureEncryption ?? false,
          keyVaultId: opts.customerManagedKey?.keyVaultId,
        }
      : undefined,
    writerRole: opts.writerRole,
    roles: { writer, pruner, statusRecord },
    containerScope,
    assignments,
    writerPrincipalIds: opts.writerPrincipalIds,
    restorerPrincipalIds: opts.restorerPrincipalIds,
    prunerPrincipalIds: opts.prunerPrincipalIds,
  };
}

/**
 * The custom roles and the assignments one side is given, as `writerRoleJson` (and the others)
 * export them. The status-record role is part of the writer's own role, so it is listed for the
 * restorer and the pruner only.
 */
export function azureRolesOf(plan: AzureContainerPlan, who: AzureRoleAssignment["for"]): { roles: AzureRoleDefinition[]; assignments: AzureRoleAssignment[] } {
  const roles = who === "writer" ? (plan.roles.writer ? [plan.roles.writer] : []) : who === "pruner" ? [plan.roles.pruner, plan.roles.statusRecord] : [plan.roles.statusRecord];
  return { roles, assignments: plan.assignments.filter((a) => a.for === who) };
}
