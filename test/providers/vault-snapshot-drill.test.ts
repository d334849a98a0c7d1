import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scheduleWindow, type BackupPolicyInput, type DrillPolicyInput } from "../../engine/index.js";
import { StatusStore } from "../../engine/status/status-store.js";
import { rootClient, s3For, s3StoreOn, sharedEnv, tempDir } from "../support/env.js";
import { kvPut, ensureKvV2 } from "../../engine/vault/kv-v2.js";
import { ProviderHost, type Props } from "./host.js";
import { runHarness, s3CredentialEnv, testPolicy, type Registered } from "./support.js";

/**
 * VaultSnapshot's `drill` input: the component passes it to the provider, which drills the new
 * snapshot in `pulumi up` as `vrb backup` does (engine/drill/scheduled.ts), run by Pulumi's own
 * dynamic-provider host against the shared cluster.
 */
describe("VaultSnapshot drill input", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const policy: BackupPolicyInput = { ...testPolicy(env, "drill"), verify: { canaries: ["vsd-canary/data/alive"] } };
  const window = scheduleWindow("6h").id;
  const s3 = s3For(env);
  let drill: DrillPolicyInput;
  let snap: Registered;
  let host: ProviderHost;

  beforeAll(async () => {
    const keysFile = join(tempDir("vsd-keys"), "init.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold, root_token: token }), { mode: 0o600 });
    drill = { every: "7d", unsealKeysFile: keysFile };
    const c = rootClient(env);
    try {
      await ensureKvV2(c, "vsd-canary");
      await kvPut(c, "vsd-canary", "alive", { yes: "1" });
    } finally {
      await c.close();
    }
    const registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys: env.keys!.unsealKeysB64, window, drill });
    snap = registered.find((r) => r.name === "snap")!;
    host = await ProviderHost.start("VaultSnapshot", s3CredentialEnv(env));
  });
  afterAll(async () => {
    await host?.stop();
    s3.destroy();
  });

  const inputs = (extra: Props = {}): Props => ({ ...snap.inputs, token, __provider: snap.provider, ...extra });

  it("check: the drill settings are validated with the policy, naming the field", async () => {
    expect(snap.inputs.drillSettings).toEqual(drill);
    const bad = await host.check({}, inputs({ drillSettings: { every: "7d" } }));
    expect(bad.failures).toEqual([{ property: "policy", reason: expect.stringMatching(/drill\.unsealKeysFile is required/) }]);
    expect((await host.check({}, inputs())).failures).toEqual([]);
  });

  it("create: drills the new snapshot when due and records it; the next window's snapshot is not due", async () => {
    const created = await host.create(inputs());
    expect(created.outs.drill).toMatchObject({ state: "passed", reason: expect.stringMatching(/^restored into OpenBao|^restored into HashiCorp Vault/) });
    expect((created.outs.drill as { rtoSeconds: number }).rtoSeconds).toBeGreaterThan(0);
    const { record } = await new StatusStore(s3StoreOn(s3, env.bucket!, policy.destination.prefix ?? "")).read(env.clusterName);
    expect(record!.lastPassedDrill).toMatchObject({ ok: true, key: created.outs.key });
    expect(record!.drills![created.outs.key as string]).toMatchObject({ ok: true });

    const next = scheduleWindow("6h", new Date(Date.parse(window) + 6 * 3_600_000)).id;
    const again = await host.create(inputs({ window: next }));
    expect(again.outs.drill).toMatchObject({ state: "not-due" });
  });
});
