import { beforeAll, describe, expect, it } from "vitest";
import { scheduleWindow } from "../../engine/index.js";
import { type IamPolicyDocument } from "../../engine/access/iam.js";
import { expectRefused, recordResources, settle, valueOf, type Registered } from "./mocks.js";

const registered: Registered[] = recordResources();
let components: typeof import("../../components/index.js");
beforeAll(async () => {
  components = await import("../../components/index.js");
});

const prod = {
  cluster: { name: "prod", nodes: ["https://vault-0.acme.internal:8200", "https://vault-1.acme.internal:8200"] },
  destination: { bucket: "acme-prod-vault-snapshots", prefix: "vault/", region: "eu-west-1" },
  retention: { keepLast: 30, maxAgeDays: 35 },
  objectLock: { mode: "COMPLIANCE" as const, days: 30 },
  schedule: { every: "6h" },
  access: { ci: { repository: "acme/platform" } },
};

describe("BackupPolicy composes bucket and access from one validated policy", () => {
  let p: InstanceType<typeof components.BackupPolicy>;
  beforeAll(async () => {
    p = new components.BackupPolicy("prod", { policy: prod, snapshot: false });
    await valueOf(p.writerPolicyJson);
    await settle(registered);
  });

  it("registers the three components under their type tokens, children parented", () => {
    const types = registered.filter((r) => r.name.startsWith("prod")).map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(["vault-raft-backup:index:BackupPolicy", "vault-raft-backup:index:SnapshotBucket", "vault-raft-backup:index:VaultBackupAccess"]));
    expect(types).not.toContain("pulumi-nodejs:dynamic:Resource");
  });

  it("exports what CI needs", async () => {
    expect(await valueOf(p.bucketName)).toBe("acme-prod-vault-snapshots");
    expect(await valueOf(p.bucketArn)).toBe("arn:aws:s3:::acme-prod-vault-snapshots");
    expect(p.prefix).toBe("vault/");
    expect(await valueOf(p.snapshotPolicyName)).toBe("vrb-prod-snapshot");
    expect(await valueOf(p.tokenRoleName)).toBe("vrb-prod-snapshot");
    expect(await valueOf(p.ciRoleName!)).toBe("vrb-prod-snapshot-ci");
    expect(p.schedule).toBe("6h");
    expect(p.statusKey).toBe("vault/prod/vrb-status.json");
    expect(await valueOf(p.statusLocation)).toBe("s3://acme-prod-vault-snapshots/vault/prod/vrb-status.json");
    expect(await valueOf(p.window)).toBe(scheduleWindow("6h").id);
    const writer = JSON.parse(await valueOf(p.writerPolicyJson)) as IamPolicyDocument;
    expect(writer.Statement.find((s) => s.Sid === "PutSnapshotsAndRetention")!.Resource).toBe("arn:aws:s3:::acme-prod-vault-snapshots/vault/*");
  });

  it("applies the policy's lock to the bucket", () => {
    const lock = registered.find((r) => r.type.endsWith("BucketObjectLockConfiguration") && r.name === "prod-bucket-lock")!;
    expect(lock.inputs.rule).toEqual({ defaultRetention: { mode: "COMPLIANCE", days: 30 } });
  });
});

describe("BackupPolicy over an existing bucket (bucket.create: false)", () => {
  it("manages no AWS resource and still exports the IAM documents for that bucket", async () => {
    const p = new components.BackupPolicy("dev", {
      policy: { cluster: { name: "local", nodes: ["http://127.0.0.1:8200"] }, destination: { bucket: "vrb-snapshots", forcePathStyle: true }, bucket: { create: false } },
      snapshot: false,
    });
    const restorer = JSON.parse(await valueOf(p.restorerPolicyJson)) as IamPolicyDocument;
    await settle(registered);
    expect(registered.filter((r) => r.name.startsWith("dev") && r.type.startsWith("aws:"))).toEqual([]);
    expect(restorer.Statement.find((s) => s.Action.includes("s3:GetObject"))!.Resource).toBe("arn:aws:s3:::vrb-snapshots/*");
    const pruner = JSON.parse(await valueOf(p.prunerPolicyJson)) as IamPolicyDocument;
    expect(pruner.Statement.find((s) => s.Action.includes("s3:DeleteObjectVersion"))!.Resource).toBe("arn:aws:s3:::vrb-snapshots/*");
    expect(await valueOf(p.snapshotPolicyName)).toBe("vrb-local-snapshot");
  });
});

describe("BackupPolicy rejects an invalid policy with the field and the fix, before registering anything", () => {
  it.each([
    [{ ...prod, cluster: { name: "prod", nodes: [] } }, "cluster.nodes", /cluster\.nodes must list at least one node address/],
    [{ ...prod, schedule: { every: "often" } }, "schedule.every", /schedule\.every must be a duration/],
    [{ ...prod, objectLock: { mode: "COMPLIANCE", days: 60 }, bucket: { expireAfterDays: 40 } }, "bucket.expireAfterDays", /must be at least objectLock\.days \(60\)/],
    [{ ...prod, access: { tokenRole: { boundCidrs: ["everywhere"] } } }, "access.tokenRole.boundCidrs.0", /must be a CIDR block/],
  ])("%j", async (policy, field, message) => {
    await expectRefused(registered, () => new components.BackupPolicy("bad", { policy: policy as never, snapshot: false }), field, message);
  });
});
