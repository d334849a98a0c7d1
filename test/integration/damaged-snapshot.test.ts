import { afterAll, describe, expect, it } from "vitest";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { Product } from "../../engine/index.js";
import { PRODUCTS, cliEnv, runVrb, s3For, sharedEnvOf } from "../support/env.js";

// Issue 26 point 7: a damaged newest snapshot (a real truncated object in the real S3 server)
// raises an alarm: `vrb verify latest` warns and exits 3 naming what it skipped, `vrb status
// --check` fails, and the metric vrb_invalid_snapshots counts it.
describe.each(PRODUCTS)("a damaged newest snapshot is seen (real %s + S3)", (product: Product) => {
  const env = sharedEnvOf(product);
  const s3 = s3For(env);
  const bucket = env.bucket!;
  const run = `${product}-${Date.now().toString(36)}`;
  const cluster = `dmg-${run}`;
  const prefix = `dmg-${run}/`;
  const flags = ["--cluster", cluster, "--prefix", prefix];

  afterAll(() => s3.destroy());

  const invalidMetric = async (): Promise<number> => {
    const r = await runVrb(["status", ...flags, "--prometheus"], cliEnv(env));
    const line = r.stdout.split("\n").find((l) => l.startsWith(`vrb_invalid_snapshots{cluster="${cluster}"}`));
    expect(line, r.stdout + r.stderr).toBeDefined();
    return Number(line!.split(" ").pop());
  };

  it("truncating the newest snapshot object: verify latest exits 3 naming it, status --check fails, vrb_invalid_snapshots is 1", async () => {
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await runVrb(["backup", ...flags, "--json"], cliEnv(env));
      expect(r.code, r.stderr).toBe(0);
      keys.push((JSON.parse(r.stdout) as { key: string }).key);
    }
    const [older, newest] = keys as [string, string];
    expect(newest).not.toBe(older);
    // Before the damage: all is well.
    expect((await runVrb(["verify", "latest", ...flags], cliEnv(env))).code).toBe(0);
    const healthy = await runVrb(["status", ...flags, "--check"], cliEnv(env));
    expect(healthy.code, healthy.stdout + healthy.stderr).toBe(0);
    expect(await invalidMetric()).toBe(0);

    // A truncated copy as the newest object's current version (what a broken copy or a bad restore of the bucket leaves).
    const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: newest }))).Body!.transformToByteArray());
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: newest, Body: body.subarray(0, Math.floor(body.length / 2)) }));

    const verify = await runVrb(["verify", "latest", ...flags], cliEnv(env));
    expect(verify.code, verify.stderr).toBe(3);
    expect(verify.stderr).toContain(`the newer snapshot s3://${bucket}/${newest} is damaged`);
    expect(verify.stderr).toContain(`s3://${bucket}/${older} verified OK, but 'latest' had to skip 1 newer damaged snapshot(s): s3://${bucket}/${newest}`);

    const check = await runVrb(["status", ...flags, "--check"], cliEnv(env));
    expect(check.code, check.stdout + check.stderr).toBe(1);
    expect(check.stderr).toContain(`vrb: check failed: ${cluster}: 1 damaged snapshot(s) (the object does not match its manifest), newest ${newest}`);
    expect(check.stderr).toContain(`so 'latest' falls back to ${older}`);
    expect(check.stdout).toContain(`DAMAGED: ${newest}`);
    expect(await invalidMetric()).toBe(1);

    // The JSON report says it too.
    const json = await runVrb(["status", ...flags, "--json"], cliEnv(env));
    expect(JSON.parse(json.stdout)).toMatchObject({ invalidSnapshots: 1, damaged: [{ key: newest, newerThanLatest: true }], newestGood: { key: older } });
  });
});
