import { describe, expect, it } from "vitest";
import { accessPlan, bucketPlan, prunerPolicyDocument, restorerPolicyDocument, statusKeyFor, validatePolicy, writerPolicyDocument } from "../../engine/index.js";
import { STATUS_OBJECT_NAME } from "../../engine/status/record.js";
import { snapshotPolicyHcl, restorePolicyHcl } from "../../engine/access/vault-policies.js";
import { DESTRUCTIVE_S3_ACTIONS, legalHoldPolicyDocument, type IamPolicyDocument, type IamStatement } from "../../engine/access/iam.js";

const scope = { bucketArn: "arn:aws:s3:::acme-vault", prefix: "prod/", kmsKeyArn: "arn:aws:kms:eu-west-1:111122223333:key/k1" };

function allowed(doc: IamPolicyDocument): IamStatement[] {
  return doc.Statement.filter((s) => s.Effect === "Allow");
}
function resources(s: IamStatement): string[] {
  return s.Resource === undefined ? [] : Array.isArray(s.Resource) ? s.Resource : [s.Resource];
}
const s3Allowed = (doc: IamPolicyDocument) => allowed(doc).flatMap((s) => s.Action.filter((a) => a.startsWith("s3:")));
const kmsAllowed = (doc: IamPolicyDocument) => allowed(doc).flatMap((s) => s.Action.filter((a) => a.startsWith("kms:")));

describe("writer IAM document (the backup identity)", () => {
  const doc = writerPolicyDocument(scope);

  it("may put snapshots and set their retention under the prefix, and list", () => {
    expect(s3Allowed(doc)).toEqual(expect.arrayContaining(["s3:PutObject", "s3:PutObjectRetention", "s3:ListBucket"]));
  });

  it("is allowed no delete, no lock bypass, no bucket reconfiguration, and is explicitly denied them", () => {
    const granted = s3Allowed(doc);
    for (const a of granted) expect(a, a).not.toMatch(/Delete|Bypass|PutBucket|LegalHold|Lifecycle|\*/);
    const deny = doc.Statement.find((s) => s.Effect === "Deny")!;
    expect(deny.Action).toEqual(expect.arrayContaining(["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"]));
    expect(deny.Action).toEqual(DESTRUCTIVE_S3_ACTIONS);
    expect(resources(deny)).toEqual(["arn:aws:s3:::acme-vault", "arn:aws:s3:::acme-vault/*"]);
  });

  it("touches objects only under the prefix, and lists only under it", () => {
    for (const s of allowed(doc).filter((s) => s.Action.some((a) => a.startsWith("s3:")))) {
      for (const r of resources(s)) expect(r === scope.bucketArn || r === "arn:aws:s3:::acme-vault/prod/*", r).toBe(true);
      if (s.Action.includes("s3:ListBucket")) expect(s.Condition).toEqual({ StringLike: { "s3:prefix": ["prod/*"] } });
    }
  });

  it("covers the status object (read it, replace it conditionally) without any delete", () => {
    const key = `arn:aws:s3:::acme-vault/${statusKeyFor("prod/", "vault-a")}`;
    const grants = (action: string) => allowed(doc).some((s) => s.Action.includes(action) && resources(s).some((r) => r.endsWith("*") && key.startsWith(r.slice(0, -1))));
    expect(grants("s3:PutObject")).toBe(true);
    expect(grants("s3:GetObject")).toBe(true);
    expect(s3Allowed(doc).filter((a) => /Delete/.test(a))).toEqual([]);
  });

  it("may use only the bucket's KMS key, to encrypt", () => {
    const kms = allowed(doc).filter((s) => s.Action.some((a) => a.startsWith("kms:")));
    expect(kms).toHaveLength(1);
    expect(kms[0]!.Resource).toBe(scope.kmsKeyArn);
    expect(kms[0]!.Action).toEqual(["kms:GenerateDataKey", "kms:Decrypt"]);
  });
});

describe("restorer IAM document", () => {
  const doc = restorerPolicyDocument(scope);

  it("reads (get and list, also unfinished uploads); writes nothing but the clusters' status objects", () => {
    expect(new Set(s3Allowed(doc))).toEqual(
      new Set(["s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:PutObject"]),
    );
    const puts = allowed(doc).filter((s) => s.Action.includes("s3:PutObject"));
    expect(puts).toHaveLength(1);
    expect(puts[0]!.Action).toEqual(["s3:PutObject"]);
    expect(resources(puts[0]!)).toEqual([`arn:aws:s3:::acme-vault/prod/*/${STATUS_OBJECT_NAME}`]);
    expect(statusKeyFor("prod/", "vault-a")).toBe(`prod/vault-a/${STATUS_OBJECT_NAME}`);
    expect(kmsAllowed(doc)).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]);
  });

  it("is scoped to the prefix", () => {
    const get = allowed(doc).find((s) => s.Action.includes("s3:GetObject"))!;
    expect(get.Resource).toBe("arn:aws:s3:::acme-vault/prod/*");
    expect(allowed(doc).find((s) => s.Action.includes("s3:ListBucket"))!.Condition).toEqual({ StringLike: { "s3:prefix": ["prod/*"] } });
  });

  it("with an empty prefix covers the whole bucket and lists without a condition", () => {
    const whole = restorerPolicyDocument({ bucketArn: scope.bucketArn, prefix: "" });
    expect(allowed(whole).find((s) => s.Action.includes("s3:GetObject"))!.Resource).toBe("arn:aws:s3:::acme-vault/*");
    expect(allowed(whole).find((s) => s.Action.includes("s3:ListBucket"))!.Condition).toBeUndefined();
  });
});

describe("pruner IAM document (the retention job: vrb prune)", () => {
  const doc = prunerPolicyDocument(scope);
  const objectActions = (d: IamPolicyDocument) =>
    allowed(d)
      .filter((s) => resources(s).includes("arn:aws:s3:::acme-vault/prod/*"))
      .flatMap((s) => s.Action);

  it("may list snapshots and their versions, read manifests and locks, delete versions and abort uploads, under the prefix", () => {
    expect(new Set(objectActions(doc))).toEqual(
      new Set(["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload"]),
    );
    for (const action of ["s3:ListBucket", "s3:ListBucketVersions"]) {
      const list = allowed(doc).find((s) => s.Action.includes(action))!;
      expect(list.Resource, action).toBe(scope.bucketArn);
      expect(list.Condition, action).toEqual({ StringLike: { "s3:prefix": ["prod/*"] } });
    }
    expect(allowed(doc).find((s) => s.Action.includes("s3:ListBucketMultipartUploads"))!.Resource).toBe(scope.bucketArn);
  });

  it("writes nothing but the clusters' status objects: no snapshot, no manifest", () => {
    const puts = allowed(doc).filter((s) => s.Action.includes("s3:PutObject"));
    expect(puts).toHaveLength(1);
    expect(puts[0]!.Action).toEqual(["s3:PutObject"]);
    expect(resources(puts[0]!)).toEqual([`arn:aws:s3:::acme-vault/prod/*/${STATUS_OBJECT_NAME}`]);
  });

  it("is explicitly denied lifting or shortening a lock and loosening the bucket, and may delete only what the locks allow", () => {
    const deny = doc.Statement.find((s) => s.Effect === "Deny")!;
    expect(deny.Action).toEqual(
      expect.arrayContaining([
        "s3:BypassGovernanceRetention",
        "s3:PutObjectLegalHold",
        "s3:PutObjectRetention",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:DeleteBucket",
      ]),
    );
    expect(deny.Action).not.toContain("s3:DeleteObjectVersion");
    expect(resources(deny)).toEqual(["arn:aws:s3:::acme-vault", "arn:aws:s3:::acme-vault/*"]);
    for (const a of s3Allowed(doc)) expect(deny.Action, a).not.toContain(a);
  });

  it("the writer and the pruner split the power to replace history: one may write but not delete, the other delete but not write", () => {
    const writer = writerPolicyDocument(scope);
    expect(s3Allowed(writer).filter((a) => /Delete/.test(a))).toEqual([]);
    expect(objectActions(doc)).not.toContain("s3:PutObject");
    expect(kmsAllowed(doc)).toEqual(["kms:Decrypt", "kms:GenerateDataKey"]);
  });

  it("with an empty prefix covers the whole bucket and lists without a condition", () => {
    const whole = prunerPolicyDocument({ bucketArn: scope.bucketArn, prefix: "" });
    expect(allowed(whole).find((s) => s.Action.includes("s3:DeleteObjectVersion"))!.Resource).toBe("arn:aws:s3:::acme-vault/*");
    expect(allowed(whole).find((s) => s.Action.includes("s3:ListBucketVersions"))!.Condition).toBeUndefined();
  });
});

describe("legal hold IAM document (vrb hold / release)", () => {
  const doc = legalHoldPolicyDocument(scope);

  it("may set and read legal holds under the prefix, and nothing that deletes or writes objects", () => {
    expect(new Set(s3Allowed(doc))).toEqual(new Set(["s3:ListBucket", "s3:PutObjectLegalHold", "s3:GetObjectLegalHold", "s3:GetObject", "s3:GetObjectVersion"]));
    expect(allowed(doc).find((s) => s.Action.includes("s3:PutObjectLegalHold"))!.Resource).toBe("arn:aws:s3:::acme-vault/prod/*");
  });

  it("is not part of the writer, which keeps denying s3:PutObjectLegalHold", () => {
    const writer = writerPolicyDocument(scope);
    expect(s3Allowed(writer)).not.toContain("s3:PutObjectLegalHold");
    expect(writer.Statement.find((s) => s.Effect === "Deny")!.Action).toContain("s3:PutObjectLegalHold");
  });
});

describe("Vault policies", () => {
  const capsOf = (hcl: string) => {
    const out = new Map<string, string[]>();
    for (const m of hcl.matchAll(/path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]/g))
      out.set(
        m[1]!,
        m[2]!.split(",").map((c) => c.trim().replace(/"/g, "")),
      );
    return out;
  };

  it("snapshot policy: read the snapshot and the preflight paths, nothing that writes", () => {
    const caps = capsOf(snapshotPolicyHcl());
    expect(caps.get("sys/storage/raft/snapshot")).toEqual(["read"]);
    expect(caps.get("sys/storage/raft/configuration")).toEqual(["read"]);
    expect(caps.get("sys/storage/raft/autopilot/state")).toEqual(["read"]);
    // The inventory names mounts from the mount tables; read only.
    expect(caps.get("sys/mounts")).toEqual(["read"]);
    expect(caps.get("sys/auth")).toEqual(["read"]);
    expect(caps.has("sys/storage/raft/snapshot-force")).toBe(false);
    const writes = [...caps].filter(([path, c]) => c.some((x) => x !== "read") && !path.startsWith("auth/token/"));
    expect(writes).toEqual([]);
  });

  it("restore policy: update on snapshot and snapshot-force, read on the canaries", () => {
    const caps = capsOf(restorePolicyHcl({ canaries: ["secret/data/dr-canary"] }));
    expect(caps.get("sys/storage/raft/snapshot")).toEqual(["update"]);
    expect(caps.get("sys/storage/raft/snapshot-force")).toEqual(["update"]);
    expect(caps.get("secret/data/dr-canary")).toEqual(["read"]);
  });

  it("access plan: names from the cluster, CI bound to one repository and branch", () => {
    const p = validatePolicy({
      cluster: { name: "prod", nodes: ["https://vault-0:8200"] },
      destination: { bucket: "acme-vault" },
      access: { tokenRole: { period: "12h", maxTtl: "30d", boundCidrs: ["10.0.0.0/16"] }, ci: { repository: "acme/platform" } },
    });
    const plan = accessPlan(p);
    expect(plan.names).toMatchObject({ snapshotPolicy: "vrb-prod-snapshot", restorePolicy: "vrb-prod-restore", tokenRole: "vrb-prod-snapshot" });
    expect(plan.tokenRole).toEqual({ periodSeconds: 43_200, explicitMaxTtlSeconds: 2_592_000, boundCidrs: ["10.0.0.0/16"] });
    expect(plan.ci).toMatchObject({ boundClaims: { repository: "acme/platform", ref: "refs/heads/main" }, audience: "https://github.com/acme", mount: "jwt" });
    expect(() => accessPlan({ ...p, access: { tokenRole: { period: "24h", maxTtl: "1h" } } })).toThrow(
      /access\.tokenRole\.maxTtl \(1h\) must be at least access\.tokenRole\.period/,
    );
    expect(() => accessPlan({ ...p, access: { ci: { repository: "platform" } } })).toThrow(/access\.ci\.repository must be 'owner\/name'/);
    expect(() => accessPlan({ ...p, access: { tokenRole: { boundCidrs: ["10.0.0.0"] } } })).toThrow(/access\.tokenRole\.boundCidrs\.0 must be a CIDR block/);
  });

  it("bucket plan: an existing bucket takes no bucket-building options", () => {
    const p = validatePolicy({ cluster: { name: "dev", nodes: ["http://127.0.0.1:8200"] }, destination: { bucket: "vrb-snapshots" }, bucket: { create: false } });
    expect(bucketPlan(p)).toMatchObject({ create: false, lock: { mode: "GOVERNANCE", days: 30 } });
    expect(() => bucketPlan({ ...p, bucket: { create: false, replicaRegion: "eu-west-1" } })).toThrow(/bucket\.replicaRegion has no effect with bucket\.create: false/);
  });
});
