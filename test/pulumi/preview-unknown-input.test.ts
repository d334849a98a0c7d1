import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../engine/package-info.js";
import { s3CredentialEnv, testPolicy } from "../providers/support.js";
import { sharedEnv, s3For } from "../support/env.js";
import { listKeys, PulumiProject, W1 } from "./support.js";

/**
 * A program whose snapshot `window` is another resource's output (test/pulumi/programs), under the
 * real Pulumi CLI: the engine's preview passes the unknown value to the provider's check. What is
 * proven is Pulumi's handling of our provider, the same for every product: it runs on OpenBao.
 */
describe("a preview with an unknown input (the window from another resource's output)", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const policy = testPolicy(env, "pulumi-unknown");
  const s3 = s3For(env);
  const project = new PulumiProject("vrb-unknown", join(packageRoot(), "test", "pulumi", "programs", "window-from-resource.mjs"), s3CredentialEnv(env));
  afterAll(() => s3.destroy());

  it("previews with the window unknown, then up takes the snapshot of the window the resource reports", async () => {
    await project.init({ "vault-raft-backup:policy": policy, "vault-raft-backup:window": W1 }, { "vault-raft-backup:vaultToken": token });
    const preview = await project.ok(["preview", "--diff", "--json"]);
    const plan = JSON.parse(preview.stdout) as { steps: { op: string; urn: string; newState?: { inputs?: Record<string, unknown> } }[] };
    const step = plan.steps.find((s) => s.urn.endsWith("::snap"))!;
    expect(step.op).toBe("create");
    // The engine's unknown sentinel reached the provider's check as the window, and check passed it.
    expect(step.newState!.inputs!.window).toBe("04da6b54-80e4-46f7-96ec-b56ff0331ba9");
    expect(await listKeys(s3, env.bucket!, policy.destination!.prefix!)).toEqual([]);

    await project.ok(["up", "--yes"]);
    const out = await project.outputs();
    expect(out).toMatchObject({ window: W1, status: "good" });
    expect(await listKeys(s3, env.bucket!, policy.destination!.prefix!)).toEqual([out.key]);
    for (const t of project.transcript) expect(t.includes(token)).toBe(false);
    await project.ok(["destroy", "--yes"]);
  });
});
