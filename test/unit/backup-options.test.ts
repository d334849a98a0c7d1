import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, OperationError, explainS3Error, planRetention, type StoredSnapshot } from "../../engine/index.js";
import { policyFromCli, tokenFromCli } from "../../scripts/cli/options.js";
import { tempDir } from "../support/env.js";

function configError(f: () => unknown): ConfigError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("policyFromCli: policy file, flags and environment in one validated policy", () => {
  const env = { VRB_NODES: "http://127.0.0.1:8200,http://127.0.0.1:8201/", VRB_BUCKET: "env-bucket", VRB_CLUSTER: "local" };

  it("builds a policy from the environment alone, as `vrb local env` sets it", () => {
    const p = policyFromCli({}, env);
    expect(p.cluster).toMatchObject({ name: "local", nodes: ["http://127.0.0.1:8200", "http://127.0.0.1:8201"] });
    expect(p.destination).toMatchObject({ bucket: "env-bucket", prefix: "" });
    expect(policyFromCli({}, { VAULT_ADDR: "http://10.0.0.1:8200", VRB_BUCKET: "b-b", VRB_CLUSTER: "x" }).cluster.nodes).toEqual(["http://10.0.0.1:8200"]);
  });

  it("lets flags override the file and the file override the environment", () => {
    const file = join(tempDir("opts"), "p.yaml");
    writeFileSync(file, "cluster: { name: prod, nodes: [https://vault-0:8200] }\ndestination: { bucket: file-bucket, prefix: vault/ }\nretention: { keepLast: 5 }\n");
    const fromFile = policyFromCli({ policy: file }, env);
    expect(fromFile.cluster).toMatchObject({ name: "prod", nodes: ["https://vault-0:8200"] });
    expect(fromFile.destination).toMatchObject({ bucket: "file-bucket", prefix: "vault/" });
    const flagged = policyFromCli({ policy: file, bucket: "flag-bucket", cluster: "dr", vaultAddr: ["https://vault-9:8200"], keepLast: 2 }, env);
    expect(flagged.destination.bucket).toBe("flag-bucket");
    expect(flagged.cluster).toMatchObject({ name: "dr", nodes: ["https://vault-9:8200"] });
    expect(flagged.retention).toEqual({ keepLast: 2 });
  });

  it("names the missing or bad field and the fix", () => {
    expect(configError(() => policyFromCli({}, { VRB_BUCKET: "b-b", VRB_CLUSTER: "x" })).field).toBe("cluster.nodes");
    expect(configError(() => policyFromCli({}, { VRB_NODES: "http://a:1", VRB_CLUSTER: "x" })).message).toMatch(/--bucket NAME, set VRB_BUCKET/);
    expect(configError(() => policyFromCli({ prefix: "/abs" }, env)).field).toBe("destination.prefix");
    expect(configError(() => policyFromCli({}, { ...env, VRB_NODES: "vault-0:8200" })).message).toMatch(/cluster\.nodes\.0 must be a node's API address/);
    expect(policyFromCli({}, { VRB_BUCKET: "b-b", VRB_CLUSTER: "x" }, { requireNodes: false }).cluster.nodes).toEqual([]);
    expect(configError(() => tokenFromCli({})).field).toBe("VAULT_TOKEN");
    expect(tokenFromCli({ BAO_TOKEN: "s.abcdefghijklmnopqrstuvwx" })).toBe("s.abcdefghijklmnopqrstuvwx");
  });
});

describe("planRetention", () => {
  const now = new Date("2026-06-30T12:00:00Z");
  const snap = (hoursAgo: number, status: StoredSnapshot["status"] = "good"): StoredSnapshot => ({
    bucket: "b",
    key: `k-${hoursAgo}`,
    cluster: "c",
    takenAt: new Date(now.getTime() - hoursAgo * 3_600_000),
    raftIndex: 1000 - hoursAgo,
    bytes: 10,
    status,
  });

  it("keeps the newest N good snapshots and drops the rest", () => {
    const plan = planRetention([snap(30), snap(6), snap(12), snap(18)], { keepLast: 2 }, now);
    expect(plan.keep.map((d) => d.snapshot.key)).toEqual(["k-6", "k-12"]);
    expect(plan.delete.map((d) => d.snapshot.key)).toEqual(["k-18", "k-30"]);
  });

  it("applies maxAgeDays as a second limit but never drops the newest good snapshot", () => {
    const plan = planRetention([snap(100), snap(80), snap(1, "incomplete"), snap(5, "incomplete")], { keepLast: 10, maxAgeDays: 1 }, now);
    expect(plan.keep.map((d) => d.snapshot.key)).toEqual(["k-1", "k-80"]);
    expect(plan.delete.map((d) => d.snapshot.key)).toEqual(["k-5", "k-100"]);
    expect(plan.keep[1]!.reason).toMatch(/newest good/);
  });
});

describe("S3 credential errors", () => {
  it("become a config error (exit 2) that says what to set, also when wrapped by a stage", () => {
    const sdk = Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError" });
    const wrapped = new OperationError("upload failed: Could not load credentials from any providers", { stage: "upload", cause: sdk });
    for (const err of [sdk, wrapped]) {
      const explained = explainS3Error(err) as { exitCode: number; message: string };
      expect(explained.exitCode).toBe(2);
      expect(explained.message).toMatch(/AWS_ACCESS_KEY_ID/);
    }
    const other = new Error("boom");
    expect(explainS3Error(other)).toBe(other);
  });
});
