import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openStore, validatePolicy, type BackupPolicyInput } from "../../engine/index.js";
import { gcsBucketPlan, gcsWriterPolicyDocument, type GcsIamPolicyDocument } from "../../engine/access/gcs-plan.js";
import { packageRoot } from "../../engine/package-info.js";
import { expectRefused, named, recordResources, settle, valueOf, type Registered } from "./mocks.js";

// Mocks first, then the components (they register against whatever monitor is installed).
const registered: Registered[] = recordResources();
let components: typeof import("../../components/index.js");
beforeAll(async () => {
  components = await import("../../components/index.js");
});

const SUB = "11111111-2222-3333-4444-555555555555";
const WRITER_SA = "serviceAccount:vrb-backup@acme-vault.iam.gserviceaccount.com";
const WRITER_ID = "aaaaaaaa-0000-0000-0000-000000000001";
const cluster = { name: "prod", nodes: ["https://vault-0.acme.internal:8200"] };
const lock = { mode: "COMPLIANCE" as const, days: 30 };

const gcsPolicy = {
  cluster,
  destination: { type: "gcs" as const, bucket: "acme-vault-snapshots", prefix: "vault/", projectId: "acme-vault" },
  retention: { keepLast: 30, maxAgeDays: 35 },
  objectLock: lock,
  access: { ci: { repository: "acme/platform" } },
};
const azurePolicy = {
  cluster,
  destination: { type: "azure" as const, accountName: "acmebackups", container: "vault-snapshots", prefix: "vault/" },
  retention: { keepLast: 30, maxAgeDays: 35 },
  objectLock: lock,
};
const azureOptions = { subscriptionId: SUB, resourceGroupName: "vault-backup", location: "westeurope", writerPrincipalIds: [WRITER_ID] };
const filePolicy = { cluster, destination: { type: "file" as const, path: "/mnt/backup/vault/", prefix: "dev/" }, retention: { keepLast: 5 } };

const mine = (name: string) => registered.filter((r) => r.name === name || r.name.startsWith(`${name}-`));
const clouds = (rs: Registered[]) => rs.filter((r) => /^(aws|gcp|azure-native):/.test(r.type));

describe("BackupPolicy with a gcs destination declares a GcsSnapshotBucket", () => {
  let p: InstanceType<typeof components.BackupPolicy>;
  beforeAll(async () => {
    p = new components.BackupPolicy("gprod", { policy: gcsPolicy, gcs: { location: "EUROPE-WEST1", writerMembers: [WRITER_SA] }, tags: { team: "platform" }, snapshot: false });
    await valueOf(p.writerPolicyJson);
    await settle(registered);
  });

  it("registers the Cloud Storage component and the Vault access, and nothing of AWS or Azure", () => {
    const types = mine("gprod").map((r) => r.type);
    expect(types).toEqual(
      expect.arrayContaining(["vault-raft-backup:index:BackupPolicy", "vault-raft-backup:index:GcsSnapshotBucket", "vault-raft-backup:index:VaultBackupAccess"]),
    );
    expect(types).not.toContain("vault-raft-backup:index:SnapshotBucket");
    expect(types.filter((t) => t.startsWith("aws:") || t.startsWith("azure-native:"))).toEqual([]);
  });

  it("builds the bucket from the policy and the gcs argument: location, per-object retention, labels from the tags", () => {
    const b = named(registered, "gcp:storage/bucket:Bucket", "gprod-bucket").inputs;
    expect(b).toMatchObject({
      name: "acme-vault-snapshots",
      location: "EUROPE-WEST1",
      enableObjectRetention: true,
      publicAccessPrevention: "enforced",
      labels: { team: "platform" },
    });
    // The policy's lock lets the writer set retention on what it writes.
    const writer = registered.find((r) => r.type === "gcp:projects/iAMCustomRole:IAMCustomRole" && r.name === "gprod-bucket-writer")!;
    expect(writer.inputs.permissions).toContain("storage.objects.setRetention");
  });

  it("exports the bucket, its IAM bindings and a gs:// status location; the S3-only outputs are empty", async () => {
    expect(p.storeType).toBe("gcs");
    expect(await valueOf(p.bucketName)).toBe("acme-vault-snapshots");
    expect(await valueOf(p.bucketArn)).toBe("");
    expect(await valueOf(p.kmsKeyArn)).toBeUndefined();
    expect(p.accountName).toBeUndefined();
    expect(await valueOf(p.statusLocation)).toBe("gs://acme-vault-snapshots/vault/prod/vrb-status.json");
    const writer = JSON.parse(await valueOf(p.writerPolicyJson)) as GcsIamPolicyDocument;
    expect(writer.version).toBe(3);
    expect(writer.bindings.map((b) => b.role)).toEqual(["projects/acme-vault/roles/vrbSnapshotWriter", "projects/acme-vault/roles/vrbStatusRecordWriter"]);
    expect(writer.bindings[0]!.members).toEqual([WRITER_SA]);
    expect(await valueOf(p.ciRoleName!)).toBe("vrb-prod-snapshot-ci");
  });
});

describe("BackupPolicy with an azure destination declares an AzureSnapshotContainer", () => {
  let p: InstanceType<typeof components.BackupPolicy>;
  beforeAll(async () => {
    p = new components.BackupPolicy("aprod", { policy: azurePolicy, azure: azureOptions, tags: { Team: "Platform" }, snapshot: false });
    await valueOf(p.writerPolicyJson);
    await settle(registered);
  });

  it("registers the account, the container with the policy's lock, and nothing of AWS or Google", () => {
    const types = mine("aprod").map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(["vault-raft-backup:index:AzureSnapshotContainer", "vault-raft-backup:index:VaultBackupAccess"]));
    expect(types.filter((t) => t.startsWith("aws:") || t.startsWith("gcp:"))).toEqual([]);
    expect(named(registered, "azure-native:storage:StorageAccount", "aprod-container").inputs).toMatchObject({
      accountName: "acmebackups",
      location: "westeurope",
      tags: { Team: "Platform" },
    });
    expect(named(registered, "azure-native:storage:BlobContainerImmutabilityPolicy", "aprod-container-immutability").inputs.immutabilityPeriodSinceCreationInDays).toBe(30);
  });

  it("exports account, container, the roles and assignments, and an azure:// status location", async () => {
    expect(p.storeType).toBe("azure");
    expect(await valueOf(p.accountName!)).toBe("acmebackups");
    expect(await valueOf(p.bucketName)).toBe("vault-snapshots");
    expect(await valueOf(p.bucketArn)).toBe("");
    expect(await valueOf(p.kmsKeyArn)).toBeUndefined();
    expect(await valueOf(p.statusLocation)).toBe("azure://acmebackups/vault-snapshots/vault/prod/vrb-status.json");
    const writer = JSON.parse(await valueOf(p.writerPolicyJson)) as { roles: { DataActions: string[] }[]; assignments: { for: string }[] };
    expect(writer.roles).toHaveLength(1);
    expect(writer.roles[0]!.DataActions.some((a) => /delete/i.test(a))).toBe(false);
    expect(writer.assignments.map((a) => a.for)).toEqual(["writer"]);
    const restorer = JSON.parse(await valueOf(p.restorerPolicyJson)) as { assignments: { for: string }[] };
    expect(restorer.assignments.map((a) => a.for)).toEqual(["restorer", "restorer"]);
  });
});

describe("BackupPolicy with a file destination builds no store", () => {
  it("registers only the Vault access, and exports the directory and a file:// status location", async () => {
    const p = new components.BackupPolicy("fdev", { policy: filePolicy, snapshot: false });
    expect(await valueOf(p.statusLocation)).toBe("file:///mnt/backup/vault/dev/prod/vrb-status.json");
    await settle(registered);
    expect(clouds(mine("fdev"))).toEqual([]);
    expect(
      mine("fdev")
        .filter((r) => r.type.startsWith("vault-raft-backup:"))
        .map((r) => r.type),
    ).toEqual(["vault-raft-backup:index:BackupPolicy", "vault-raft-backup:index:VaultBackupAccess"]);
    expect(p.storeType).toBe("file");
    expect(await valueOf(p.bucketName)).toBe("/mnt/backup/vault");
    expect(await valueOf(p.bucketArn)).toBe("");
    expect(await valueOf(p.writerPolicyJson)).toBe("");
    expect(await valueOf(p.restorerPolicyJson)).toBe("");
    expect(await valueOf(p.prunerPolicyJson)).toBe("");
    expect(await valueOf(p.snapshotPolicyName)).toBe("vrb-prod-snapshot");
  });

  it("takes bucket.create: false, which says what a directory always means", async () => {
    const p = new components.BackupPolicy("fdev2", { policy: { ...filePolicy, bucket: { create: false } }, snapshot: false });
    expect(await valueOf(p.bucketName)).toBe("/mnt/backup/vault");
  });
});

describe("bucket.create: false describes the existing store and manages nothing, for every type", () => {
  it("gcs: no resource of Google's, and the same IAM bindings GcsSnapshotBucket would grant", async () => {
    const policy = { ...gcsPolicy, bucket: { create: false } };
    const p = new components.BackupPolicy("gexisting", { policy, gcs: { writerMembers: [WRITER_SA] }, snapshot: false });
    const writer = await valueOf(p.writerPolicyJson);
    await settle(registered);
    expect(clouds(mine("gexisting"))).toEqual([]);
    expect(await valueOf(p.bucketName)).toBe("acme-vault-snapshots");
    expect(JSON.parse(writer)).toEqual(gcsWriterPolicyDocument(gcsBucketPlan({ ...validatePolicy(policy), gcs: { writerMembers: [WRITER_SA] } })));
    expect(await valueOf(p.statusLocation)).toBe("gs://acme-vault-snapshots/vault/prod/vrb-status.json");
  });

  it("azure: no resource of Azure's, and the same roles and assignments AzureSnapshotContainer exports", async () => {
    const existing = { subscriptionId: SUB, resourceGroupName: "vault-backup", writerPrincipalIds: [WRITER_ID] };
    const policy = { ...azurePolicy, bucket: { create: false } };
    const p = new components.BackupPolicy("aexisting", { policy, azure: existing, snapshot: false });
    const writer = await valueOf(p.writerPolicyJson);
    const restorer = await valueOf(p.restorerPolicyJson);
    await settle(registered);
    expect(clouds(mine("aexisting"))).toEqual([]);
    expect(await valueOf(p.accountName!)).toBe("acmebackups");
    expect(await valueOf(p.statusLocation)).toBe("azure://acmebackups/vault-snapshots/vault/prod/vrb-status.json");
    // The component, for an existing account, makes the container and exports the same documents.
    const c = new components.AzureSnapshotContainer("acompare", { ...policy, azure: existing });
    expect(writer).toBe(await valueOf(c.writerRoleJson));
    expect(restorer).toBe(await valueOf(c.restorerRoleJson));
  });
});

describe("statusLocation is the URL the CLI's store gives the status object", () => {
  beforeAll(() => {
    // Opening an Azure store needs a credential to construct its client; nothing is sent anywhere.
    vi.stubEnv("AZURE_STORAGE_CONNECTION_STRING", "");
    vi.stubEnv("AZURE_STORAGE_KEY", Buffer.from("not-a-real-key").toString("base64"));
  });
  afterAll(() => vi.unstubAllEnvs());

  it.each([
    ["s3", { cluster, destination: { bucket: "acme-prod-vault-snapshots", prefix: "vault/", region: "eu-west-1" }, bucket: { create: false } }, {}],
    ["gcs", { ...gcsPolicy, bucket: { create: false } }, {}],
    ["azure", { ...azurePolicy, bucket: { create: false } }, { azure: { subscriptionId: SUB, resourceGroupName: "vault-backup" } }],
    ["file", filePolicy, {}],
    ["file at the root", { ...filePolicy, destination: { type: "file" as const, path: "/" } }, {}],
  ])("%s", async (label, policy, extra) => {
    const p = new components.BackupPolicy(`url-${label.replace(/ /g, "-")}`, { policy: policy as BackupPolicyInput, ...extra, snapshot: false });
    const store = await openStore(validatePolicy(policy).destination);
    expect(p.storeType).toBe(store.type);
    try {
      expect(await valueOf(p.statusLocation)).toBe(store.url(p.statusKey));
    } finally {
      store.close();
    }
  });
});

describe("BackupPolicy refuses what it cannot build, naming the field and the fix, before registering anything", () => {
  it.each([
    [
      "azure without the azure argument",
      { policy: azurePolicy },
      "azure",
      /azure is required for a type: azure destination: pass BackupPolicy's `azure` argument with subscriptionId and resourceGroupName/,
    ],
    [
      "azure argument for gcs",
      { policy: gcsPolicy, gcs: { location: "EU" }, azure: azureOptions },
      "azure",
      /azure is set but destination\.type is 'gcs'.*remove it, or set destination\.type: azure/,
    ],
    ["gcs argument for s3", { policy: { cluster, destination: { bucket: "acme-s3" } }, gcs: { location: "EU" } }, "gcs", /gcs is set but destination\.type is 's3'/],
    ["gcs argument for file", { policy: filePolicy, gcs: {} }, "gcs", /gcs is set but destination\.type is 'file'/],
    ["objectLock on a directory", { policy: { ...filePolicy, objectLock: lock } }, "objectLock", /a file destination cannot lock objects .*remove objectLock/],
    ["a lifecycle on a directory", { policy: { ...filePolicy, bucket: { expireAfterDays: 40 } } }, "bucket.expireAfterDays", /has no effect on a file destination.*remove it/],
    ["creating a directory", { policy: { ...filePolicy, bucket: { create: true } } }, "bucket.create", /has no effect on a file destination/],
    ["gcs without a location", { policy: gcsPolicy }, "gcs.location", /gcs\.location is required when the bucket is created/],
    ["gcs without a project", { policy: { ...gcsPolicy, destination: { type: "gcs", bucket: "b-ok" } }, gcs: { location: "EU" } }, "gcs.project", /gcs\.project is required/],
    ["an S3-only bucket field on gcs", { policy: { ...gcsPolicy, bucket: { replicaRegion: "eu-west-1" } }, gcs: { location: "EU" } }, "bucket.replicaRegion", /is S3-only/],
    ["a tag that is no gcs label", { policy: gcsPolicy, gcs: { location: "EU" }, tags: { Team: "platform" } }, "tags.Team", /not a Cloud Storage label key.*rename it/],
    ["a tag value that is no gcs label", { policy: gcsPolicy, gcs: { location: "EU" }, tags: { team: "Platform Team" } }, "tags.team", /not a Cloud Storage label value/],
    [
      "an azure account without a location",
      { policy: azurePolicy, azure: { subscriptionId: SUB, resourceGroupName: "rg" } },
      "azure.location",
      /azure\.location is required when the storage account is created/,
    ],
    [
      "an azure argument without a subscription",
      { policy: azurePolicy, azure: { resourceGroupName: "rg", location: "westeurope" } },
      "azure.subscriptionId",
      /azure\.subscriptionId is required/,
    ],
  ])("%s", async (_label, args, field, message) => {
    await expectRefused(registered, () => new components.BackupPolicy("bad", { ...args, snapshot: false } as never), field, message);
  });
});

// The snapshot's policy is checked in the compiled stack program, in plain Node: a VaultSnapshot
// serializes its provider, which vitest's module transform breaks (harness/run-stack.mjs).
interface StackRun {
  registered: Registered[];
  outputs: Record<string, unknown>;
  error?: { name?: string; message: string; field?: string };
}
/** Runs the harness as a child process without blocking this worker (vitest's RPC times out if the event loop stalls). */
async function runStack(config: Record<string, unknown>): Promise<StackRun> {
  const flat = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const root = packageRoot();
  const child = spawn(process.execPath, [join(root, "test", "components", "harness", "run-stack.mjs")], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => err.push(b));
  const closed = once(child, "close");
  child.stdin.end(JSON.stringify({ stack: "destinations", config: flat }));
  const [code] = (await closed) as [number | null];
  if (code !== 0) throw new Error(`stack harness exited ${code}: ${Buffer.concat(err).toString()}`);
  return JSON.parse(Buffer.concat(out).toString()) as StackRun;
}
const snapshotPolicyOf = (run: StackRun) => {
  const snaps = run.registered.filter((r) => r.type.endsWith(":VaultSnapshot"));
  expect(snaps).toHaveLength(1);
  return snaps[0]!.inputs.policy as Record<string, unknown> & { destination: Record<string, unknown> };
};

describe("the backup stack passes gcs and azure settings from config to BackupPolicy, and the snapshot gets a policy the engine accepts", () => {
  it("gcs: the bucket is declared, and the snapshot's policy keeps the destination and lock as given (no S3 key, no default lock)", async () => {
    const gcsKey = "projects/acme-kms/locations/europe-west1/keyRings/vault/cryptoKeys/snapshots";
    const policy = { ...gcsPolicy, destination: { ...gcsPolicy.destination, kmsKeyName: gcsKey } };
    const run = await runStack({ "vault-raft-backup:policy": policy, "vault-raft-backup:gcs": { location: "EU" } });
    expect(run.error).toBeUndefined();
    expect(run.registered.some((r) => r.type === "vault-raft-backup:index:GcsSnapshotBucket")).toBe(true);
    const snap = snapshotPolicyOf(run);
    expect(() => validatePolicy(snap)).not.toThrow();
    expect(snap.destination).toEqual({ ...policy.destination, type: "gcs", kmsKeyName: gcsKey });
    expect(snap.objectLock).toEqual(lock);
    expect(snap.bucket).toBeUndefined();
    expect(snap.access).toBeUndefined();
    expect(run.outputs).toMatchObject({ storeType: "gcs", bucketName: "acme-vault-snapshots", statusLocation: "gs://acme-vault-snapshots/vault/prod/vrb-status.json" });
    expect(run.outputs.bucketArn).toBeUndefined();
  });

  it("azure without a lock: the container gets the default policy, and the snapshot asks for no per-version lock it may not set", async () => {
    const { objectLock: _lock, ...unlocked } = azurePolicy;
    const run = await runStack({ "vault-raft-backup:policy": unlocked, "vault-raft-backup:azure": azureOptions });
    expect(run.error).toBeUndefined();
    expect(run.registered.some((r) => r.type === "vault-raft-backup:index:AzureSnapshotContainer")).toBe(true);
    const snap = snapshotPolicyOf(run);
    expect(() => validatePolicy(snap)).not.toThrow();
    expect(snap.objectLock).toBeUndefined();
    expect(snap.destination).toEqual(azurePolicy.destination);
    expect(run.outputs).toMatchObject({ storeType: "azure", accountName: "acmebackups", bucketName: "vault-snapshots" });
  });

  it("file: no store is declared, and the snapshot writes to the directory", async () => {
    const run = await runStack({ "vault-raft-backup:policy": filePolicy });
    expect(run.error).toBeUndefined();
    expect(run.registered.filter((r) => /^(aws|gcp|azure-native):/.test(r.type))).toEqual([]);
    const snap = snapshotPolicyOf(run);
    expect(() => validatePolicy(snap)).not.toThrow();
    expect(snap.destination).toEqual(filePolicy.destination);
    expect(run.outputs).toMatchObject({ storeType: "file", statusLocation: "file:///mnt/backup/vault/dev/prod/vrb-status.json" });
  });

  it.each([
    ["azure destination without vault-raft-backup:azure", { "vault-raft-backup:policy": azurePolicy }, "azure"],
    ["vault-raft-backup:gcs beside an azure destination", { "vault-raft-backup:policy": azurePolicy, "vault-raft-backup:azure": azureOptions, "vault-raft-backup:gcs": {} }, "gcs"],
    [
      "vault-raft-backup:gcs with manage snapshotsOnly",
      { "vault-raft-backup:policy": { ...gcsPolicy, bucket: { create: false } }, "vault-raft-backup:gcs": { location: "EU" }, "vault-raft-backup:manage": "snapshotsOnly" },
      "gcs",
    ],
  ])("refuses %s before anything registers", async (_label, config, field) => {
    const run = await runStack(config);
    expect(run.error?.field).toBe(field);
    expect(run.registered).toEqual([]);
  });
});
