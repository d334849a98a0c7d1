import { describe, expect, it } from "vitest";
import { azureContainerPlan, azureStatusRecordCondition } from "../../engine/access/azure-plan.js";
import { gcsBucketPlan, gcsRestorerPolicyDocument, gcsWriterPolicyDocument } from "../../engine/access/gcs-plan.js";
import { ConfigError, validatePolicy, type BackupPolicyInput } from "../../engine/index.js";
import { azureDestinationOf, gcsDestinationOf } from "../../engine/storage/destination.js";

const cluster = { name: "prod", nodes: ["https://vault-0:8200"] };
const policy = (p: Partial<BackupPolicyInput> & Pick<BackupPolicyInput, "destination">) => validatePolicy({ cluster, ...p });
const SUB = "11111111-2222-3333-4444-555555555555";

describe("gcsDestinationOf / azureDestinationOf", () => {
  it("refuse another store type naming destination.type, as s3DestinationOf does", () => {
    const s3 = policy({ destination: { bucket: "acme" } }).destination;
    expect(() => gcsDestinationOf(s3, "the GCS thing")).toThrow(ConfigError);
    expect(() => gcsDestinationOf(s3, "the GCS thing")).toThrow("destination.type is 's3': the GCS thing needs a gcs destination");
    expect(() => azureDestinationOf(s3, "the Azure thing", "copies.0.type")).toThrow("copies.0.type is 's3': the Azure thing needs an azure destination");
  });
});

describe("gcsBucketPlan", () => {
  it("on a bucket without prefix, binds the whole bucket with no prefix condition, and still limits deletes to the status records", () => {
    const plan = gcsBucketPlan({
      ...policy({ destination: { type: "gcs", bucket: "acme-snaps", projectId: "acme" } }),
      gcs: { location: "EU", writerMembers: ["group:vrb@acme.example"] },
    });
    const writer = gcsWriterPolicyDocument(plan);
    expect(writer.bindings[0]).toEqual({ role: "projects/acme/roles/vrbSnapshotWriter", members: ["group:vrb@acme.example"] });
    expect(writer.bindings[1]!.condition!.expression).toBe('resource.name.startsWith("projects/_/buckets/acme-snaps/objects/") && resource.name.endsWith("/vrb-status.json")');
    expect(gcsRestorerPolicyDocument(plan).bindings[0]!.members).toEqual([]);
  });

  it("takes the project from gcs.project over destination.projectId, and the role id prefix", () => {
    const plan = gcsBucketPlan({
      ...policy({ destination: { type: "gcs", bucket: "acme-snaps", projectId: "data" } }),
      gcs: { location: "EU", project: "iam-home", roleIdPrefix: "vrbProd" },
    });
    expect(plan.project).toBe("iam-home");
    expect(plan.roles.writer.id).toBe("vrbProdSnapshotWriter");
  });

  it("refuses lifecycle settings on a bucket it does not manage", () => {
    expect(() => gcsBucketPlan({ ...policy({ destination: { type: "gcs", bucket: "acme-snaps", projectId: "p" } }), bucket: { create: false, expireAfterDays: 40 } })).toThrow(
      "bucket.expireAfterDays has no effect with bucket.create: false",
    );
  });
});

describe("azureContainerPlan", () => {
  it("scopes every assignment to the container and uses the policy's objectLock for the default policy", () => {
    const plan = azureContainerPlan({
      ...policy({ destination: { type: "azure", accountName: "acct", container: "snaps", prefix: "v/" }, objectLock: { mode: "GOVERNANCE", days: 14 } }),
      azure: { subscriptionId: SUB, resourceGroupName: "rg", location: "westeurope" },
    });
    expect(plan.lock).toEqual({ mode: "GOVERNANCE", days: 14 });
    expect(new Set(plan.assignments.map((a) => a.scope))).toEqual(
      new Set([`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default/containers/snaps`]),
    );
    expect(plan.account).toMatchObject({ create: true, sku: "Standard_ZRS", allowSharedKeyAccess: true, softDeleteDays: 7 });
  });

  it("leaves runAsSuperUser out of the writer when the policy does not lock", () => {
    const plan = azureContainerPlan({
      ...policy({ destination: { type: "azure", accountName: "acct", container: "snaps" } }),
      azure: { subscriptionId: SUB, resourceGroupName: "rg", location: "westeurope" },
    });
    expect(plan.roles.writer!.DataActions.some((a) => a.includes("runAsSuperUser"))).toBe(false);
    expect(plan.lock).toEqual({ mode: "GOVERNANCE", days: 30 });
  });

  it("writes a status-record condition that only lets writes through on <prefix>*/vrb-status.json", () => {
    expect(azureStatusRecordCondition("")).toContain("StringLike '*/vrb-status.json'");
    expect(azureStatusRecordCondition("vault/")).toMatch(/^\(\(!\(ActionMatches\{'.*blobs\/write'\}\) AND !\(ActionMatches\{'.*blobs\/add\/action'\}\)\) OR \(@Resource/);
  });
});
