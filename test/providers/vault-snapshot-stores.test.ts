import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scheduleWindow, type BackupPolicyInput } from "../../engine/index.js";
import { sharedEnv } from "../support/env.js";
import { ProviderHost, type Props } from "./host.js";
import { runHarness, testPolicy, type Registered } from "./support.js";

/**
 * VaultSnapshot on a store other than S3 (a directory), under Pulumi's own dynamic-provider host
 * against the shared OpenBao cluster: the resource remembers its destination, so an unchanged
 * `pulumi up` takes no new snapshot and a refresh checks the directory the snapshot is in.
 */
describe("VaultSnapshot dynamic provider on a file destination", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const window = scheduleWindow("6h").id;
  const dir = mkdtempSync(join(tmpdir(), "vrb-provider-file-"));
  const policy: BackupPolicyInput = {
    ...testPolicy(env, "file"),
    destination: { type: "file", path: dir, prefix: "snapshots/" },
    objectLock: undefined,
  };
  let host: ProviderHost;
  let inputs: Props;
  let id: string;
  let state: Props;

  beforeAll(async () => {
    const registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys: env.keys!.unsealKeysB64, window });
    const snap = registered.find((r) => r.name === "snap")!;
    host = await ProviderHost.start("VaultSnapshot", {});
    const checked = await host.check({}, { ...snap.inputs, token, __provider: snap.provider });
    expect(checked.failures).toEqual([]);
    inputs = checked.inputs;
  });
  afterAll(async () => {
    await host?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("create writes the snapshot into the directory and remembers the destination, never a secret", async () => {
    const created = await host.create(inputs);
    id = created.id;
    state = created.outs;
    expect(id).toBe(`file://${dir}/${state.key as string}`);
    expect(state).toMatchObject({ status: "good", bucket: dir, destination: { type: "file", path: dir, prefix: "snapshots/" } });
    expect(readFileSync(join(dir, state.key as string)).length).toBe(state.bytes);
    expect(JSON.stringify(state).includes(token)).toBe(false);
  });

  it("diff: the same destination is no change; another directory is a new snapshot", async () => {
    expect(await host.diff(id, state, inputs)).toMatchObject({ changes: "none", replaces: [] });
    const elsewhere = { ...inputs, policy: { ...(inputs.policy as object), destination: { type: "file", path: join(dir, "other"), prefix: "snapshots/" } } };
    const moved = await host.diff(id, state, elsewhere);
    expect(moved.replaces).toEqual(["policy.destination"]);
  });

  it("refresh checks the snapshot in its directory: good, then damaged once its bytes change", async () => {
    const good = await host.read(id, state, inputs);
    expect(good.outs).toMatchObject({ status: "good", problems: [] });
    const file = join(dir, state.key as string);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
    const damaged = await host.read(id, state, inputs);
    expect(damaged.outs.status).toBe("corrupt");
    const d = await host.diff(id, damaged.outs, inputs);
    expect(d.replaces).toContain("status");
  });
});
