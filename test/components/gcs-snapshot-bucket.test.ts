import { beforeAll, describe, expect, it } from "vitest";
import { gcsBucketPlan, type GcsIamPolicyDocument } from "../../engine/access/gcs-plan.js";
import { validatePolicy } from "../../engine/index.js";
import { named, recordResources, settle, valueOf, type Registered } from "./mocks.js";

// Mocks first, then the components (they register against whatever monitor is installed).
const registered: Registered[] = recordResources();
let components: typeof import("../../components/index.js");
beforeAll(async () => {
  components = await import("../../components/index.js");
});

const T = {
  bucket: "gcp:storage/bucket:Bucket",
  role: "gcp:projects/iAMCustomRole:IAMCustomRole",
  member: "gcp:storage/bucketIAMMember:BucketIAMMember",
};
const KEY = "projects/acme-kms/locations/europe-west1/keyRings/vault/cryptoKeys/snapshots";
const WRITER = "serviceAccount:vrb-backup@acme-vault.iam.gserviceaccount.com";
const RESTORER = "serviceAccount:vrb-restore@acme-vault.iam.gserviceaccount.com";
const PRUNER = "serviceAccount:vrb-prune@acme-vault.iam.gserviceaccount.com";

interface Rule {
  action: { type: string };
  condition: { age?: number; daysSinceNoncurrentTime?: number; withState?: string; matchesPrefixes?: string[] };
}
interface Binding {
  role: string;
  member: string;
  condition?: { title: string; expression: string };
}

function permissionsOf(roleId: string): string[] {
  const role = registered.find((r) => r.type === T.role && r.inputs.roleId === roleId);
  if (!role) throw new Error(`no custom role ${roleId}`);
  return role.inputs.permissions as string[];
}

describe("GcsSnapshotBucket for a locked, CMEK-encrypted destination", () => {
  const name = "prod";
  let writer: GcsIamPolicyDocument;
  let restorer: GcsIamPolicyDocument;
  let pruner: GcsIamPolicyDocument;
  beforeAll(async () => {
    const b = new components.GcsSnapshotBucket(name, {
      destination: { type: "gcs", bucket: "acme-vault-snapshots", prefix: "vault/", projectId: "acme-vault", kmsKeyName: KEY },
      objectLock: { mode: "COMPLIANCE", days: 30 },
      retention: { keepLast: 30, maxAgeDays: 35 },
      bucket: { noncurrentExpireAfterDays: 5, abortIncompleteUploadDays: 3 },
      gcs: { location: "EUROPE-WEST1", softDeleteDays: 14, writerMembers: [WRITER], restorerMembers: [RESTORER], prunerMembers: [PRUNER] },
    });
    writer = JSON.parse(await valueOf(b.writerPolicyJson)) as GcsIamPolicyDocument;
    pruner = JSON.parse(await valueOf(b.prunerPolicyJson)) as GcsIamPolicyDocument;
    restorer = JSON.parse(await valueOf(b.restorerPolicyJson)) as GcsIamPolicyDocument;
    await settle(registered);
  });

  it("keeps the bucket private: uniform access, public access prevention enforced, never force-destroyed", () => {
    const b = named(registered, T.bucket, name).inputs;
    expect(b.name).toBe("acme-vault-snapshots");
    expect(b.location).toBe("EUROPE-WEST1");
    expect(b.uniformBucketLevelAccess).toBe(true);
    expect(b.publicAccessPrevention).toBe("enforced");
    expect(b.forceDestroy).toBe(false);
  });

  it("keeps every generation: versioning, object retention for the backup's locks, soft delete for the given days", () => {
    const b = named(registered, T.bucket, name).inputs;
    expect(b.versioning).toEqual({ enabled: true });
    expect(b.enableObjectRetention).toBe(true);
    expect(b.softDeletePolicy).toEqual({ retentionDurationSeconds: 14 * 86400 });
    // No bucket retention policy: Cloud Storage refuses one beside versioning, and it would freeze the status record.
    expect(b.retentionPolicy).toBeUndefined();
  });

  it("encrypts with the destination's CMEK key by default", () => {
    expect(named(registered, T.bucket, name).inputs.encryption).toEqual({ defaultKmsKeyName: KEY });
  });

  it("expires past the lock and max age plus a margin, drops noncurrent versions after N days and aborts stale multipart uploads", () => {
    const rules = named(registered, T.bucket, name).inputs.lifecycleRules as Rule[];
    const live = rules.find((r) => r.action.type === "Delete" && r.condition.withState === "LIVE")!;
    expect(live.condition).toMatchObject({ age: 42, matchesPrefixes: ["vault/"] });
    const old = rules.find((r) => r.action.type === "Delete" && r.condition.withState === "ARCHIVED")!;
    expect(old.condition).toMatchObject({ daysSinceNoncurrentTime: 5, matchesPrefixes: ["vault/"] });
    expect(rules.find((r) => r.action.type === "AbortIncompleteMultipartUpload")!.condition.age).toBe(3);
  });

  it("gives the writer create, read, list and set-retention, and no delete except on the status records", () => {
    const perms = permissionsOf("vrbSnapshotWriter");
    expect(perms).toEqual(expect.arrayContaining(["storage.objects.create", "storage.objects.get", "storage.objects.list", "storage.objects.setRetention"]));
    expect(perms.some((p) => p.includes("delete") || p.includes("overrideUnlockedRetention") || p.startsWith("storage.buckets.update"))).toBe(false);
    expect(permissionsOf("vrbStatusRecordWriter")).toEqual(["storage.objects.create", "storage.objects.delete"]);
    const bindings = registered.filter((r) => r.type === T.member && r.inputs.member === WRITER).map((r) => r.inputs as unknown as Binding);
    const deleting = bindings.filter((b) => b.role.endsWith("/vrbStatusRecordWriter"));
    expect(deleting).toHaveLength(1);
    expect(deleting[0]!.condition!.expression).toBe(
      'resource.name.startsWith("projects/_/buckets/acme-vault-snapshots/objects/vault/") && resource.name.endsWith("/vrb-status.json")',
    );
    expect(bindings.every((b) => b.role.startsWith("projects/acme-vault/roles/"))).toBe(true);
  });

  it("gives the restorer read and list only, plus the status records", () => {
    const perms = permissionsOf("vrbSnapshotReader");
    expect(perms.sort()).toEqual(["storage.buckets.get", "storage.objects.get", "storage.objects.list"]);
    const roles = registered.filter((r) => r.type === T.member && r.inputs.member === RESTORER).map((r) => (r.inputs as unknown as Binding).role);
    expect(roles.sort()).toEqual(["projects/acme-vault/roles/vrbSnapshotReader", "projects/acme-vault/roles/vrbStatusRecordWriter"]);
  });

  it("gives the pruner (vrb prune) read, list and delete under the prefix, no create or retention change, plus the status records", () => {
    expect(permissionsOf("vrbSnapshotPruner").sort()).toEqual(["storage.buckets.get", "storage.objects.delete", "storage.objects.get", "storage.objects.list"]);
    const roles = registered.filter((r) => r.type === T.member && r.inputs.member === PRUNER).map((r) => (r.inputs as unknown as Binding).role);
    expect(roles.sort()).toEqual(["projects/acme-vault/roles/vrbSnapshotPruner", "projects/acme-vault/roles/vrbStatusRecordWriter"]);
    expect(pruner.bindings.find((b) => b.role.endsWith("/vrbSnapshotPruner"))!.condition!.expression).toContain(
      'resource.name.startsWith("projects/_/buckets/acme-vault-snapshots/objects/vault/")',
    );
  });

  it("limits object access to the prefix, and says listing cannot be limited", () => {
    const prefixed = writer.bindings.find((b) => b.role.endsWith("/vrbSnapshotWriter"))!.condition!;
    expect(prefixed.expression).toContain('resource.name.startsWith("projects/_/buckets/acme-vault-snapshots/objects/vault/")');
    expect(prefixed.description).toMatch(/listing covers the whole bucket/);
    expect(restorer.bindings.map((b) => b.members)).toEqual([[RESTORER], [RESTORER]]);
    expect(writer.version).toBe(3);
  });
});

describe("GcsSnapshotBucket without a lock, on an existing bucket", () => {
  it("grants no retention right when the policy asks for no lock", () => {
    const plan = gcsBucketPlan({
      ...validatePolicy({ cluster: { name: "c", nodes: ["https://v:8200"] }, destination: { type: "gcs", bucket: "b-ok", projectId: "p" } }),
      gcs: { location: "EU" },
    });
    expect(plan.roles.writer.permissions).not.toContain("storage.objects.setRetention");
    expect(plan.roles.writer.permissions).not.toContain("storage.objects.update");
    expect(plan.lock).toBeUndefined();
    expect(plan.expireAfterDays).toBe(37);
  });

  it("makes only the roles and bindings when bucket.create is false", async () => {
    const before = registered.length;
    const b = new components.GcsSnapshotBucket("existing", {
      destination: { type: "gcs", bucket: "acme-existing", projectId: "acme-vault" },
      bucket: { create: false },
      gcs: { writerMembers: [WRITER] },
    });
    expect(await valueOf(b.bucketName)).toBe("acme-existing");
    await settle(registered);
    const mine = registered.slice(before);
    expect(mine.some((r) => r.type === T.bucket)).toBe(false);
    expect(mine.filter((r) => r.type === T.member).map((r) => r.inputs.bucket)).toEqual(["acme-existing", "acme-existing"]);
  });
});

describe("GcsSnapshotBucket rejects bad input before registering anything", () => {
  it.each([
    [{ destination: { bucket: "acme-s3" } }, /destination\.type is 's3': the GcsSnapshotBucket component .* needs a gcs destination/],
    [{ destination: { type: "azure", accountName: "acct", container: "snaps" } }, /destination\.type is 'azure'/],
    [{ destination: { type: "gcs", bucket: "b-ok" }, gcs: { location: "EU" } }, /gcs\.project is required \(or destination\.projectId\)/],
    [{ destination: { type: "gcs", bucket: "b-ok", projectId: "p" } }, /gcs\.location is required when the bucket is created/],
    [{ destination: { type: "gcs", bucket: "b-ok", projectId: "p" }, gcs: { location: "EU", softDeleteDays: 3 } }, /gcs\.softDeleteDays must be 0 \(off\) or between 7 and 90/],
    [{ destination: { type: "gcs", bucket: "b-ok", projectId: "p" }, gcs: { location: "EU" }, bucket: { replicaRegion: "eu-west-1" } }, /bucket\.replicaRegion is S3-only/],
    [
      { destination: { type: "gcs", bucket: "b-ok", projectId: "p" }, gcs: { location: "EU" }, objectLock: { mode: "COMPLIANCE", days: 90 }, bucket: { expireAfterDays: 30 } },
      /bucket\.expireAfterDays \(30\) must be at least objectLock\.days \(90\)/,
    ],
    [{ destination: { type: "gcs", bucket: "b-ok", projectId: "p" }, gcs: { location: "EU", writerMembers: ["vrb@x"] } }, /gcs\.writerMembers\.0 must be an IAM member/],
    [{ destination: { type: "gcs", bucket: "b-ok", kmsKeyName: "my-key" } }, /destination\.kmsKeyName must be a Cloud KMS key name/],
    [{ destination: { type: "gcs", bucket: "b-ok", projectId: "p" }, gcs: { locaton: "EU" } }, /unknown field 'gcs\.locaton'/],
  ])("%j", async (args, message) => {
    const before = registered.length;
    expect(() => new components.GcsSnapshotBucket("bad", args as never)).toThrow(message);
    await settle(registered);
    expect(registered.length).toBe(before);
  });
});
