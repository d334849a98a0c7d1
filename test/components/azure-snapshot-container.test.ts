import { beforeAll, describe, expect, it } from "vitest";
import { AZURE_BLOB_ACTIONS } from "../../engine/access/azure-plan.js";
import { named, recordResources, settle, valueOf, type Registered } from "./mocks.js";

// Mocks first, then the components (they register against whatever monitor is installed).
const registered: Registered[] = recordResources();
let components: typeof import("../../components/index.js");
beforeAll(async () => {
  components = await import("../../components/index.js");
});

const T = {
  account: "azure-native:storage:StorageAccount",
  service: "azure-native:storage:BlobServiceProperties",
  lifecycle: "azure-native:storage:ManagementPolicy",
  scope: "azure-native:storage:EncryptionScope",
  container: "azure-native:storage:BlobContainer",
  immutability: "azure-native:storage:BlobContainerImmutabilityPolicy",
  roleDefinition: "azure-native:authorization:RoleDefinition",
  assignment: "azure-native:authorization:RoleAssignment",
};
const SUB = "11111111-2222-3333-4444-555555555555";
const WRITER = "aaaaaaaa-0000-0000-0000-000000000001";
const RESTORER = "bbbbbbbb-0000-0000-0000-000000000002";
const PRUNER = "cccccccc-0000-0000-0000-000000000003";
const CONTAINER_SCOPE = `/subscriptions/${SUB}/resourceGroups/vault-backup/providers/Microsoft.Storage/storageAccounts/acmebackups/blobServices/default/containers/vault-snapshots`;
const KEY = "https://acme-kv.vault.azure.net/keys/vrb-snapshots";
const VAULT = `/subscriptions/${SUB}/resourceGroups/keys/providers/Microsoft.KeyVault/vaults/acme-kv`;

interface Permission {
  actions: string[];
  dataActions: string[];
}
const mine = (name: string) => registered.filter((r) => r.name === name || r.name.startsWith(`${name}-`));
function dataActionsOf(roleName: RegExp, within: Registered[]): string[] {
  const def = within.find((r) => r.type === T.roleDefinition && roleName.test(String(r.inputs.roleName)));
  if (!def) throw new Error(`no role definition matching ${String(roleName)}`);
  return (def.inputs.permissions as Permission[]).flatMap((p) => p.dataActions);
}

describe("AzureSnapshotContainer creating the account, locked COMPLIANCE, with a customer-managed key", () => {
  const name = "prod";
  let prunerJson: { roles: { Name: string }[]; assignments: { for: string; role: unknown; condition?: string }[] };
  beforeAll(async () => {
    const c = new components.AzureSnapshotContainer(name, {
      destination: { type: "azure", accountName: "acmebackups", container: "vault-snapshots", prefix: "vault/", encryptionScope: "vrbcmk" },
      objectLock: { mode: "COMPLIANCE", days: 30 },
      retention: { keepLast: 30, maxAgeDays: 35 },
      bucket: { noncurrentExpireAfterDays: 5 },
      azure: {
        subscriptionId: SUB,
        resourceGroupName: "vault-backup",
        location: "westeurope",
        disableSharedKeyAccess: true,
        softDeleteDays: 14,
        writerPrincipalIds: [WRITER],
        restorerPrincipalIds: [RESTORER],
        prunerPrincipalIds: [PRUNER],
        customerManagedKey: { keyUri: KEY, keyVaultId: VAULT },
      },
    });
    await valueOf(c.writerRoleJson);
    prunerJson = JSON.parse(await valueOf(c.prunerRoleJson)) as typeof prunerJson;
    await settle(registered);
  });

  it("makes the account private: no anonymous blob access, HTTPS only, TLS 1.2 minimum, no shared key when asked", () => {
    const a = named(registered, T.account, name).inputs;
    expect(a).toMatchObject({ accountName: "acmebackups", kind: "StorageV2", location: "westeurope", sku: { name: "Standard_ZRS" } });
    expect(a.allowBlobPublicAccess).toBe(false);
    expect(a.enableHttpsTrafficOnly).toBe(true);
    expect(a.minimumTlsVersion).toBe("TLS1_2");
    expect(a.allowSharedKeyAccess).toBe(false);
    expect(named(registered, T.container, `${name}-container`).inputs.publicAccess).toBe("None");
  });

  it("keeps every version: blob versioning, blob and container soft delete for the given days", () => {
    const s = named(registered, T.service, `${name}-blob-service`).inputs;
    expect(s.accountName).toBe("acmebackups");
    expect(s.isVersioningEnabled).toBe(true);
    expect(s.deleteRetentionPolicy).toEqual({ enabled: true, days: 14 });
    expect(s.containerDeleteRetentionPolicy).toEqual({ enabled: true, days: 14 });
  });

  it("enables version-level immutability on the container with a default policy of objectLock.days", () => {
    expect(named(registered, T.container, `${name}-container`).inputs.immutableStorageWithVersioning).toEqual({ enabled: true });
    const p = named(registered, T.immutability, `${name}-immutability`).inputs;
    expect(p).toMatchObject({ immutabilityPolicyName: "default", immutabilityPeriodSinceCreationInDays: 30, allowProtectedAppendWrites: false, containerName: "vault-snapshots" });
  });

  it("encrypts every blob with the customer-managed key through an encryption scope the container enforces", () => {
    const s = named(registered, T.scope, `${name}-cmk`).inputs;
    expect(s).toMatchObject({ encryptionScopeName: "vrbcmk", source: "Microsoft.KeyVault", keyVaultProperties: { keyUri: KEY } });
    const c = named(registered, T.container, `${name}-container`).inputs;
    expect(c.defaultEncryptionScope).toBe("vrbcmk");
    expect(c.denyEncryptionScopeOverride).toBe(true);
    expect(named(registered, T.account, name).inputs.identity).toEqual({ type: "SystemAssigned" });
    const grant = named(registered, T.assignment, `${name}-key-access`).inputs;
    expect(grant.scope).toBe(VAULT);
    expect(grant.roleDefinitionId).toBe(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6`);
  });

  it("expires snapshots past the lock and max age plus a margin, and old versions after N days, under the prefix", () => {
    const rules = (named(registered, T.lifecycle, `${name}-lifecycle`).inputs.policy as { rules: Record<string, unknown>[] }).rules;
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      enabled: true,
      definition: {
        filters: { blobTypes: ["blockBlob"], prefixMatch: ["vault-snapshots/vault/"] },
        actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: 42 } }, version: { delete: { daysAfterCreationGreaterThan: 5 } } },
      },
    });
  });

  it("gives the writer a custom role that writes and locks but cannot delete, assigned on the container only", () => {
    const actions = dataActionsOf(/snapshot writer/, mine(name));
    expect(actions).toEqual(expect.arrayContaining([AZURE_BLOB_ACTIONS.read, AZURE_BLOB_ACTIONS.write, AZURE_BLOB_ACTIONS.add, AZURE_BLOB_ACTIONS.runAsSuperUser]));
    expect(actions.some((a) => /delete/i.test(a))).toBe(false);
    const assignments = registered.filter((r) => r.type === T.assignment && r.inputs.principalId === WRITER);
    expect(assignments).toHaveLength(1);
    expect(assignments[0]!.inputs.scope).toBe(CONTAINER_SCOPE);
    // Its writes and locks only under the prefix: another environment's blobs in the container are out of reach.
    const condition = String(assignments[0]!.inputs.condition);
    for (const action of [AZURE_BLOB_ACTIONS.write, AZURE_BLOB_ACTIONS.add, AZURE_BLOB_ACTIONS.runAsSuperUser]) expect(condition).toContain(`!(ActionMatches{'${action}'})`);
    expect(condition).not.toContain(AZURE_BLOB_ACTIONS.read);
    expect(condition).toContain("@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'vault/*'");
    expect(assignments[0]!.inputs.conditionVersion).toBe("2.0");
  });

  it("gives the restorer Storage Blob Data Reader, and blob writes only on the status records by a condition", () => {
    const assignments = registered.filter((r) => r.type === T.assignment && r.inputs.principalId === RESTORER).map((r) => r.inputs);
    expect(assignments).toHaveLength(2);
    expect(assignments.every((a) => a.scope === CONTAINER_SCOPE)).toBe(true);
    const reader = assignments.find((a) => a.roleDefinitionId === `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1`);
    expect(reader).toBeDefined();
    const status = assignments.find((a) => a.condition)!;
    expect(status.conditionVersion).toBe("2.0");
    expect(status.condition).toContain("@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'vault/*/vrb-status.json'");
    expect(dataActionsOf(/status record writer/, mine(name)).sort()).toEqual([AZURE_BLOB_ACTIONS.add, AZURE_BLOB_ACTIONS.write].sort());
  });

  it("gives the pruner (vrb prune) a custom role that reads and deletes versions but can neither write nor touch immutability, and the status records by a condition", () => {
    const actions = dataActionsOf(/snapshot pruner/, mine(name));
    expect(actions.sort()).toEqual([AZURE_BLOB_ACTIONS.read, AZURE_BLOB_ACTIONS.delete, AZURE_BLOB_ACTIONS.deleteVersion].sort());
    const assignments = registered.filter((r) => r.type === T.assignment && r.inputs.principalId === PRUNER).map((r) => r.inputs);
    expect(assignments).toHaveLength(2);
    expect(assignments.every((a) => a.scope === CONTAINER_SCOPE)).toBe(true);
    const conditions = assignments.map((a) => String(a.condition));
    expect(conditions.some((c) => c.includes("StringLike 'vault/*/vrb-status.json'"))).toBe(true);
    // Its deletes are limited to the prefix: another environment's blobs in the container are out of reach.
    const deletes = conditions.find((c) => c.includes(AZURE_BLOB_ACTIONS.deleteVersion))!;
    expect(deletes).toContain(`!(ActionMatches{'${AZURE_BLOB_ACTIONS.delete}'})`);
    expect(deletes).toContain("@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'vault/*'");
    expect(assignments.every((a) => a.conditionVersion === "2.0")).toBe(true);
    expect(prunerJson.roles.map((r) => r.Name)).toEqual([expect.stringMatching(/snapshot pruner/), expect.stringMatching(/status record writer/)]);
    expect(prunerJson.assignments.map((a) => a.for)).toEqual(["pruner", "pruner"]);
  });
});

describe("AzureSnapshotContainer on an existing account", () => {
  const name = "existing";
  let writerJson: { roles: unknown[]; assignments: { role: unknown }[] };
  beforeAll(async () => {
    const c = new components.AzureSnapshotContainer(name, {
      destination: { type: "azure", accountName: "acmeshared", container: "vault-snapshots" },
      bucket: { create: false },
      azure: { subscriptionId: SUB, resourceGroupName: "shared", writerRole: "contributor", writerPrincipalIds: [WRITER] },
    });
    writerJson = JSON.parse(await valueOf(c.writerRoleJson)) as typeof writerJson;
    await settle(registered);
  });

  it("manages no account settings or lifecycle there, only the container, its default policy and the roles", () => {
    const types = mine(name).map((r) => r.type);
    expect(types).not.toContain(T.account);
    expect(types).not.toContain(T.service);
    expect(types).not.toContain(T.lifecycle);
    expect(named(registered, T.container, `${name}-container`).inputs).toMatchObject({ accountName: "acmeshared", immutableStorageWithVersioning: { enabled: true } });
    // No objectLock: the container still keeps each version 30 days (GOVERNANCE's default, as on S3).
    expect(named(registered, T.immutability, `${name}-immutability`).inputs.immutabilityPeriodSinceCreationInDays).toBe(30);
  });

  it("assigns Storage Blob Data Contributor on the container when asked", () => {
    const a = registered.find((r) => r.type === T.assignment && r.name.startsWith(`${name}-writer`))!.inputs;
    expect(a.roleDefinitionId).toBe(`/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe`);
    expect(a.scope).toBe(`/subscriptions/${SUB}/resourceGroups/shared/providers/Microsoft.Storage/storageAccounts/acmeshared/blobServices/default/containers/vault-snapshots`);
    expect(writerJson.roles).toEqual([]);
    expect(writerJson.assignments).toHaveLength(1);
  });
});

describe("AzureSnapshotContainer rejects bad input before registering anything", () => {
  const azure = { subscriptionId: SUB, resourceGroupName: "vault-backup", location: "westeurope" };
  const dest = { type: "azure", accountName: "acmebackups", container: "vault-snapshots" };
  it.each([
    [{ destination: { bucket: "acme-s3" }, azure }, /destination\.type is 's3': the AzureSnapshotContainer component .* needs an azure destination/],
    [{ destination: { type: "gcs", bucket: "b-ok" }, azure }, /destination\.type is 'gcs'/],
    [{ destination: dest, azure: { resourceGroupName: "rg", location: "westeurope" } }, /azure\.subscriptionId is required/],
    [{ destination: dest, azure: { subscriptionId: SUB, resourceGroupName: "vault-backup" } }, /azure\.location is required when the storage account is created/],
    [{ destination: dest, azure: { ...azure, customerManagedKey: { keyUri: KEY } } }, /destination\.encryptionScope is required with azure\.customerManagedKey/],
    [
      { destination: dest, objectLock: { mode: "GOVERNANCE", days: 7 }, azure: { ...azure, writerRole: "contributor" } },
      /azure\.writerRole 'contributor' cannot set the per-version immutability policies/,
    ],
    [{ destination: dest, bucket: { create: false }, azure }, /azure\.location has no effect with bucket\.create: false/],
    [
      {
        destination: { ...dest, encryptionScope: "vrbcmk" },
        bucket: { create: false },
        azure: { subscriptionId: SUB, resourceGroupName: "rg", customerManagedKey: { keyUri: KEY, keyVaultId: VAULT } },
      },
      /azure\.customerManagedKey\.keyVaultId needs bucket\.create/,
    ],
    [{ destination: { ...dest, prefix: "it's/" }, azure }, /destination\.prefix must not contain ' or \*/],
    [{ destination: dest, bucket: { transition: { days: 30, storageClass: "GLACIER" } }, azure }, /bucket\.transition is S3-only/],
    [{ destination: dest, azure: { ...azure, writerPrincipalIds: ["vrb-backup"] } }, /azure\.writerPrincipalIds\.0 must be an Entra ID object id/],
    [{ destination: dest, azure: { ...azure, softDeleteDays: 0 } }, /azure\.softDeleteDays must be between 1 and 365 days/],
  ])("%j", async (args, message) => {
    const before = registered.length;
    expect(() => new components.AzureSnapshotContainer("bad", args as never)).toThrow(message);
    await settle(registered);
    expect(registered.length).toBe(before);
  });
});
