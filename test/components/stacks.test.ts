import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { accessPlan, bucketPlan, validatePolicy } from "../../engine/index.js";
import { packageRoot } from "../../engine/package-info.js";
import { sharedEnv } from "../support/env.js";

const root = packageRoot();
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";

function stackConfig(stack: string): Record<string, unknown> {
  const doc = parseYaml(readFileSync(join(root, "stacks", `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  return doc.config;
}

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider?: string;
}
interface StackRun {
  registered: Registered[];
  outputs: Record<string, unknown>;
  error?: { name?: string; message: string; field?: string };
}

/** Runs the compiled program under mocks in plain Node (see harness/run-stack.mjs), as `pulumi up -s <stack>` would. */
function runStack(stack: string, config: Record<string, unknown>): StackRun {
  const flat = Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const res = spawnSync(process.execPath, [join(root, "test", "components", "harness", "run-stack.mjs")], {
    cwd: root,
    input: JSON.stringify({ stack, config: flat }),
    encoding: "utf8",
    timeout: 60_000,
  });
  if (res.status !== 0) throw new Error(`stack harness exited ${res.status}: ${res.stderr}`);
  return JSON.parse(res.stdout) as StackRun;
}

describe("per-environment stack files", () => {
  it("Pulumi.yaml runs the compiled backup program with stack config under stacks/", () => {
    const project = parseYaml(readFileSync(join(root, "Pulumi.yaml"), "utf8")) as { name: string; main: string; stackConfigDir: string };
    expect(project.name).toBe("vault-raft-backup");
    expect(project.stackConfigDir).toBe("stacks");
    expect(existsSync(join(root, project.main))).toBe(true);
  });

  it.each(["dev", "prod"])("Pulumi.%s.yaml holds a valid policy (schema and cross-field rules) and no secret", (stack) => {
    const config = stackConfig(stack);
    const policy = validatePolicy(config["vault-raft-backup:policy"], `Pulumi.${stack}.yaml`);
    expect(() => bucketPlan(policy)).not.toThrow();
    expect(() => accessPlan(policy)).not.toThrow();
    expect(Object.keys(config).filter((k) => /token|secret|password|key$/i.test(k))).toEqual([]);
  });

  it("the prod example builds the bucket on AWS with a COMPLIANCE lock and an off-site copy", () => {
    const policy = validatePolicy(stackConfig("prod")["vault-raft-backup:policy"]);
    expect(bucketPlan(policy)).toMatchObject({ create: true, lock: { mode: "COMPLIANCE" }, replica: { region: "eu-central-1" } });
    expect(policy.cluster.nodes.every((n) => n.startsWith("https://"))).toBe(true);
  });
});

describe("the backup program under mocks with the dev stack config", () => {
  const env = sharedEnv();
  const run = runStack("dev", { ...stackConfig("dev"), "vault-raft-backup:localEnvironment": env.dir });
  const find = (type: string) => run.registered.filter((r) => r.type === type);

  it("runs without error and exports what CI needs", () => {
    expect(run.error).toBeUndefined();
    expect(run.outputs).toMatchObject({
      cluster: "local",
      bucketName: "vrb-snapshots",
      prefix: "dev/",
      snapshotPolicyName: "vrb-local-snapshot",
      restorePolicyName: "vrb-local-restore",
      tokenRoleName: "vrb-local-snapshot",
      schedule: "1h",
    });
    expect(JSON.parse(run.outputs.writerPolicyJson as string).Statement.length).toBeGreaterThan(0);
  });

  it("points Vault resources at the local cluster through a provider whose token is a secret", () => {
    const [provider] = find("pulumi:providers:vault");
    expect(provider!.inputs.address).toBe(env.nodes[0]!.apiAddr);
    expect((provider!.inputs.token as Record<string, unknown>)[SECRET_SIG_KEY]).toBeDefined();
    for (const r of run.registered.filter((x) => x.type.startsWith("vault:"))) expect(r.provider, r.name).toContain("local-vault");
  });

  it("uses the existing local bucket: no AWS resource is managed", () => {
    expect(run.registered.filter((r) => r.type.startsWith("aws:"))).toEqual([]);
  });

  it("takes this window's snapshot with the local addresses and the token as a secret", () => {
    const [snap] = run.registered.filter((r) => r.type.endsWith(":VaultSnapshot"));
    const policy = snap!.inputs.policy as { cluster: { nodes: string[] }; destination: Record<string, unknown>; bucket?: unknown; access?: unknown };
    expect(policy.cluster.nodes).toEqual(env.nodes.map((n) => n.apiAddr));
    expect(policy.destination).toMatchObject({ bucket: "vrb-snapshots", prefix: "dev/", endpoint: env.s3!.endpoint, forcePathStyle: true });
    expect(policy.bucket).toBeUndefined();
    expect(policy.access).toBeUndefined();
    expect(snap!.inputs.window).toBe(run.outputs.window);
    expect((snap!.inputs.token as Record<string, unknown>)[SECRET_SIG_KEY]).toBeDefined();
    expect(JSON.stringify(snap!.inputs.policy)).not.toContain(env.keys!.rootToken);
  });

  it("fails with the field and the fix when the policy config is wrong", () => {
    const bad = runStack("dev", {
      ...stackConfig("dev"),
      "vault-raft-backup:localEnvironment": env.dir,
      "vault-raft-backup:policy": { ...(stackConfig("dev")["vault-raft-backup:policy"] as object), schedule: { every: "hourly" } },
    });
    expect(bad.error?.field).toBe("schedule.every");
    expect(bad.error?.message).toMatch(/Pulumi config vault-raft-backup:policy.*schedule\.every must be a duration/);
    expect(bad.registered).toEqual([]);
  });
});
