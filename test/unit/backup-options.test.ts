import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OperationError, explainS3Error, type StoredSnapshot } from "../../engine/index.js";
import { planRetention } from "../../engine/catalogue/retention.js";
import { givenToken } from "../../engine/index.js";
import { policyFromCli } from "../../scripts/cli/options.js";
import { configErrorOf } from "../support/config-error.js";
import { tempDir } from "../support/env.js";

const configError = configErrorOf;

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
    expect(flagged.destination).toMatchObject({ bucket: "flag-bucket" });
    expect(flagged.cluster).toMatchObject({ name: "dr", nodes: ["https://vault-9:8200"] });
    expect(flagged.retention).toEqual({ keepLast: 2 });
  });

  it("names the missing or bad field and the fix", () => {
    expect(configError(() => policyFromCli({}, { VRB_BUCKET: "b-b", VRB_CLUSTER: "x" })).field).toBe("cluster.nodes");
    expect(configError(() => policyFromCli({}, { VRB_NODES: "http://a:1", VRB_CLUSTER: "x" })).message).toMatch(/--bucket NAME, set VRB_BUCKET/);
    expect(configError(() => policyFromCli({ prefix: "/abs" }, env)).field).toBe("destination.prefix");
    expect(configError(() => policyFromCli({}, { ...env, VRB_NODES: "vault-0:8200" })).message).toMatch(/cluster\.nodes\.0 must be a node's API address/);
    expect(policyFromCli({}, { VRB_BUCKET: "b-b", VRB_CLUSTER: "x" }, { requireNodes: false }).cluster.nodes).toEqual([]);
  });

  it("login settings: flag > policy file > environment; a method given by flag drops the file's method-specific fields", () => {
    const dir = tempDir("auth-opts");
    const file = join(dir, "p.yaml");
    writeFileSync(file, "cluster:\n  name: prod\n  auth: { method: approle, mount: ar, roleIdFile: /r, secretIdFile: /s }\n  clientCert: /c.pem\n  clientKey: /k.pem\n");
    const fromFile = policyFromCli({ policy: file }, { ...env, VRB_AUTH_MOUNT: "env-mount", VAULT_CLIENT_CERT: "/env.pem" });
    expect(fromFile.cluster.auth).toEqual({ method: "approle", mount: "ar", roleIdFile: "/r", secretIdFile: "/s" });
    expect(fromFile.cluster.clientCert).toBe("/c.pem");
    expect(policyFromCli({ policy: file, authMount: "flag-mount" }, env).cluster.auth.mount).toBe("flag-mount");
    expect(policyFromCli({ policy: file, authMethod: "jwt", authRole: "ci", jwtFile: "/j" }, env).cluster.auth).toEqual({ method: "jwt", role: "ci", jwtFile: "/j" });
    expect(policyFromCli({}, { ...env, VRB_AUTH_METHOD: "kubernetes", VRB_AUTH_ROLE: "vrb", VAULT_CLIENT_CERT: "/e.pem", VAULT_CLIENT_KEY: "/e-key.pem" }).cluster).toMatchObject({
      auth: { method: "kubernetes", role: "vrb" },
      clientCert: "/e.pem",
      clientKey: "/e-key.pem",
    });
    expect(policyFromCli({}, env).cluster.auth).toEqual({ method: "token" });
    // The schema names the field: a role is needed for jwt, approle files only for approle.
    expect(configError(() => policyFromCli({ authMethod: "jwt" }, env)).message).toMatch(/cluster\.auth\.role is required for method jwt/);
    expect(configError(() => policyFromCli({ authMethod: "token", roleIdFile: "/r" }, env)).message).toMatch(/cluster\.auth\.roleIdFile applies to method approle only/);
    expect(configError(() => policyFromCli({ authMethod: "ldap" }, env)).field).toBe("cluster.auth.method");
  });

  it("a handed-in token: VAULT_TOKEN, then BAO_TOKEN, then the token file, then ~/.vault-token", () => {
    const dir = tempDir("auth-token");
    const sink = join(dir, "sink");
    writeFileSync(sink, "s.fromthesinkfile000000000\n");
    writeFileSync(join(dir, ".vault-token"), "s.fromthehomedirectory00000");
    expect(givenToken({ env: { VAULT_TOKEN: "s.vaulttoken0000000000000", BAO_TOKEN: "s.baotoken" }, tokenFile: sink, homeDir: dir })?.source).toBe("VAULT_TOKEN");
    expect(givenToken({ env: { BAO_TOKEN: "s.baotoken0000000000000000" }, tokenFile: sink, homeDir: dir })?.source).toBe("BAO_TOKEN");
    expect(givenToken({ env: {}, tokenFile: sink, homeDir: dir })).toEqual({ token: "s.fromthesinkfile000000000", source: sink });
    expect(givenToken({ env: {}, homeDir: dir })?.token).toBe("s.fromthehomedirectory00000");
    expect(givenToken({ env: {}, homeDir: join(dir, "nowhere") })).toBeUndefined();
  });
});

describe("planRetention", () => {
  const now = new Date("2026-06-30T12:00:00Z");
  const snap = (hoursAgo: number, status: StoredSnapshot["status"] = "good"): StoredSnapshot => ({
    bucket: "b",
    key: `k-${hoursAgo}`,
    url: `s3://b/k-${hoursAgo}`,
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
