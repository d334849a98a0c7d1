import * as pulumi from "@pulumi/pulumi";
import {
  AZURE_BUILT_IN_ROLES,
  azureBuiltInRoleId,
  azureContainerPlan,
  azureRolesOf,
  policySchema,
  validatePart,
  type AzureContainerOptionsInput,
  type AzureContainerPlan,
  type AzureRoleDefinition,
  type BackupPolicyInput,
} from "../engine/index.js";
import { azureSdk } from "./cloud-sdks.js";

export interface AzureSnapshotContainerArgs {
  /** A `type: azure` destination: account, container, prefix and (optionally) the encryption scope. */
  destination: BackupPolicyInput["destination"];
  /** The container's default immutability policy; GOVERNANCE (Unlocked) for 30 days when absent. */
  objectLock?: BackupPolicyInput["objectLock"];
  retention?: BackupPolicyInput["retention"];
  /** `create` (false: the storage account exists) and the lifecycle shared with S3. */
  bucket?: BackupPolicyInput["bucket"];
  /** Subscription, resource group, account settings, customer-managed key and who gets the roles. */
  azure: AzureContainerOptionsInput;
  tags?: Record<string, string>;
}

const bucketPartSchema = policySchema.pick({ destination: true, objectLock: true, retention: true, bucket: true });

/**
 * An Azure Blob container for Raft snapshots that a security reviewer can sign off: on an account
 * with blob versioning, blob and container soft delete, no anonymous access, HTTPS and TLS 1.2 only
 * (optionally no shared key); the container with version-level immutability and a default policy
 * from `objectLock`, a lifecycle backstop, an optional customer-managed key through an encryption
 * scope the container enforces, and role assignments on the container only: a writer that cannot
 * delete, a restorer that reads and writes nothing but the status records, and a pruner (`vrb
 * prune`) that deletes what retention drops and the immutability policies allow, and writes
 * nothing but the status records.
 */
export class AzureSnapshotContainer extends pulumi.ComponentResource {
  readonly accountName: pulumi.Output<string>;
  readonly containerName: pulumi.Output<string>;
  readonly prefix: string;
  /** The container's resource id: the scope of every role assignment. */
  readonly containerScope: string;
  /** The custom roles (JSON as `az role definition create` takes it) and the assignments. */
  readonly writerRoleJson: pulumi.Output<string>;
  readonly restorerRoleJson: pulumi.Output<string>;
  readonly prunerRoleJson: pulumi.Output<string>;
  /** The account's managed identity, for the Key Vault grant a customer-managed key needs (created accounts only). */
  readonly accountPrincipalId?: pulumi.Output<string>;
  readonly plan: AzureContainerPlan;

  constructor(name: string, args: AzureSnapshotContainerArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validate before registering anything: bad input changes nothing.
    const { destination, objectLock, retention, bucket } = args;
    const policy = validatePart(bucketPartSchema, { destination, objectLock, retention, bucket }, [], "AzureSnapshotContainer");
    const plan = azureContainerPlan({ ...policy, bucket, azure: args.azure });
    super("vault-raft-backup:index:AzureSnapshotContainer", name, {}, opts);
    this.plan = plan;
    this.prefix = plan.prefix;
    this.containerScope = plan.containerScope;
    const parent = { parent: this };
    const { storage, authorization } = azureSdk();
    const rg = plan.account.resourceGroupName;
    const keep = { ...parent, retainOnDelete: true };

    const accountDeps: pulumi.Resource[] = [];
    let accountName: pulumi.Output<string> = pulumi.output(plan.account.name);
    if (plan.account.create) {
      const account = new storage.StorageAccount(
        name,
        {
          accountName: plan.account.name,
          resourceGroupName: rg,
          location: plan.account.location,
          kind: "StorageV2",
          sku: { name: plan.account.sku },
          allowBlobPublicAccess: false,
          enableHttpsTrafficOnly: true,
          minimumTlsVersion: "TLS1_2",
          allowSharedKeyAccess: plan.account.allowSharedKeyAccess,
          // Without a key the account's identity is what Key Vault grants the encryption scope's key to.
          ...(plan.encryptionScope?.keyUri ? { identity: { type: "SystemAssigned" } } : {}),
          tags: args.tags,
        },
        keep,
      );
      // The account's name, known once ARM has it: whatever depends on it waits for the account.
      accountName = account.id.apply(() => plan.account.name);
      this.accountPrincipalId = account.identity.apply((i) => i?.principalId ?? "");
      const service = new storage.BlobServiceProperties(
        `${name}-blob-service`,
        {
          accountName,
          resourceGroupName: rg,
          blobServicesName: "default",
          // Version-level immutability needs versioning on first.
          isVersioningEnabled: true,
          deleteRetentionPolicy: { enabled: true, days: plan.account.softDeleteDays },
          containerDeleteRetentionPolicy: { enabled: true, days: plan.account.softDeleteDays },
        },
        parent,
      );
      new storage.ManagementPolicy(
        `${name}-lifecycle`,
        {
          accountName,
          resourceGroupName: rg,
          managementPolicyName: "default",
          policy: {
            rules: [
              {
                // A backstop behind `vrb prune`; locked versions are skipped until their policy expires.
                name: "vrb-expire-snapshots",
                enabled: true,
                type: "Lifecycle",
                definition: {
                  filters: { blobTypes: ["blockBlob"], prefixMatch: [`${plan.container}/${plan.prefix}`] },
                  actions: {
                    baseBlob: { delete: { daysAfterModificationGreaterThan: plan.expireAfterDays } },
                    version: { delete: { daysAfterCreationGreaterThan: plan.noncurrentExpireAfterDays } },
                  },
                },
              },
            ],
          },
        },
        { ...parent, dependsOn: [service] },
      );
      accountDeps.push(service);
    }

    let scopeName: pulumi.Input<string> | undefined;
    if (plan.encryptionScope?.keyUri) {
      // Azure checks the key when the scope is made, so the account's identity needs the key first.
      const grant =
        plan.encryptionScope.keyVaultId && this.accountPrincipalId
          ? [
              new authorization.RoleAssignment(
                `${name}-key-access`,
                {
                  principalId: this.accountPrincipalId,
                  principalType: "ServicePrincipal",
                  roleDefinitionId: azureBuiltInRoleId(plan.subscriptionId, AZURE_BUILT_IN_ROLES.keyVaultCryptoServiceEncryptionUser),
                  scope: plan.encryptionScope.keyVaultId,
                },
                parent,
              ),
            ]
          : [];
      const scope = new storage.EncryptionScope(
        `${name}-cmk`,
        {
          accountName,
          resourceGroupName: rg,
          encryptionScopeName: plan.encryptionScope.name,
          source: "Microsoft.KeyVault",
          keyVaultProperties: { keyUri: plan.encryptionScope.keyUri },
          requireInfrastructureEncryption: plan.encryptionScope.requireInfrastructureEncryption,
          state: "Enabled",
        },
        { ...keep, dependsOn: grant },
      );
      scopeName = scope.id.apply(() => plan.encryptionScope!.name);
    } else if (plan.encryptionScope) {
      scopeName = plan.encryptionScope.name;
    }

    const container = new storage.BlobContainer(
      `${name}-container`,
      {
        accountName,
        resourceGroupName: rg,
        containerName: plan.container,
        publicAccess: "None",
        immutableStorageWithVersioning: { enabled: true },
        // Every blob is encrypted with the scope's key, whatever a client asks for.
        ...(scopeName ? { defaultEncryptionScope: scopeName, denyEncryptionScopeOverride: true } : {}),
      },
      { ...keep, dependsOn: accountDeps },
    );
    this.containerName = container.id.apply(() => plan.container);

    // Created Unlocked: locking it (COMPLIANCE) is one-way and has no Pulumi resource; docs/storage-azure.md#pulumi.
    new storage.BlobContainerImmutabilityPolicy(
      `${name}-immutability`,
      {
        accountName,
        resourceGroupName: rg,
        containerName: this.containerName,
        immutabilityPolicyName: "default",
        immutabilityPeriodSinceCreationInDays: plan.lock.days,
        allowProtectedAppendWrites: false,
      },
      keep,
    );

    const roleDefinition = (key: "writer" | "pruner" | "statusRecord", doc: AzureRoleDefinition) =>
      new authorization.RoleDefinition(
        `${name}-${key}`,
        {
          scope: doc.AssignableScopes[0]!,
          roleName: doc.Name,
          description: doc.Description,
          roleType: "CustomRole",
          assignableScopes: doc.AssignableScopes,
          permissions: [{ actions: doc.Actions, notActions: doc.NotActions, dataActions: doc.DataActions, notDataActions: doc.NotDataActions }],
        },
        parent,
      );
    const custom = {
      writer: plan.roles.writer ? roleDefinition("writer", plan.roles.writer) : undefined,
      pruner: roleDefinition("pruner", plan.roles.pruner),
      statusRecord: roleDefinition("statusRecord", plan.roles.statusRecord),
    };

    for (const [i, a] of plan.assignments.entries()) {
      const principals = { writer: plan.writerPrincipalIds, restorer: plan.restorerPrincipalIds, pruner: plan.prunerPrincipalIds }[a.for];
      const roleDefinitionId = "builtIn" in a.role ? pulumi.output(azureBuiltInRoleId(plan.subscriptionId, a.role.id)) : custom[a.role.custom]!.id;
      principals.forEach((principalId, j) => {
        new authorization.RoleAssignment(
          `${name}-${a.for}-${i}-${j}`,
          {
            principalId,
            roleDefinitionId,
            scope: container.id.apply(() => plan.containerScope),
            ...(a.condition ? { condition: a.condition, conditionVersion: "2.0" } : {}),
          },
          parent,
        );
      });
    }

    const rolesOf = (who: "writer" | "restorer" | "pruner") => container.id.apply(() => JSON.stringify(azureRolesOf(plan, who)));
    this.writerRoleJson = rolesOf("writer");
    this.restorerRoleJson = rolesOf("restorer");
    this.prunerRoleJson = rolesOf("pruner");
    this.accountName = accountName;

    this.registerOutputs({
      accountName: this.accountName,
      containerName: this.containerName,
      prefix: this.prefix,
      containerScope: this.containerScope,
      writerRoleJson: this.writerRoleJson,
      restorerRoleJson: this.restorerRoleJson,
      prunerRoleJson: this.prunerRoleJson,
      accountPrincipalId: this.accountPrincipalId,
    });
  }
}
