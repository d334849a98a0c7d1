import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { beforeAll, describe, expect, it } from "vitest";
import type { BackupReport } from "../../engine/backup/backup.js";
import { drillAfterBackup, type ScheduledDrillOutcome } from "../../engine/drill/scheduled.js";
import { validatePolicy } from "../../engine/policy.js";
import type { LocalEnvironment } from "../../devenv/environment.js";
import type { ClusterStatus } from "../../engine/status/report.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import type { Product } from "../../engine/vault/product.js";
import { cliEnv, PRODUCTS, rootClient, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir, type CliResult } from "../support/env.js";

// Scheduled drills (policy `drill`) through the real `vrb backup`, on the shared cluster of each
// product: every scenario is a cluster name of its own (its own folder and status record), so
// they need no order between them beyond their own steps.
const run = Date.now().toString(36);

type BackupJson = BackupReport & { drill?: ScheduledDrillOutcome; exitCode?: number; error?: { stage: string; message: string } };
type StatusJson = ClusterStatus & { ok: boolean; check?: { ok: boolean; problems: string[] } };
type ListJson = { snapshots: { key: string; status: string; drill?: { ok: boolean; skipped?: string; rtoSeconds?: number } }[] };

describe.each(PRODUCTS.map((p) => [p] as [Product]))("scheduled drills on %s", (product) => {
  let env: LocalEnvironment;
  let dir: string;
  let keysFile: string;
  const mount = `sd-${run}`;
  const prefix = `scheduled-drill-${product}-${run}/`;

  /** A policy file for cluster `name` in the shared bucket, with `extra` sections (drill, encryption, retention). */
  function policyFile(name: string, extra: Record<string, unknown>): string {
    const path = join(dir, `${name}.json`);
    const policy = {
      cluster: { name, nodes: [env.nodes[0]!.apiAddr], ...(env.tls ? { caCert: env.tls.caCertPath } : {}) },
      destination: { bucket: env.bucket!, prefix, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
      verify: { canaries: [`${mount}/data/canary`] },
      ...extra,
    };
    writeFileSync(path, JSON.stringify(policy));
    return path;
  }

  const vrb = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> => runVrb(args, cliEnv(env, extraEnv));

  async function backup(policy: string, extraEnv: Record<string, string> = {}): Promise<{ r: CliResult; json: BackupJson }> {
    const r = await vrb(["backup", "--policy", policy, "--retries", "0", "--json"], extraEnv);
    let json: BackupJson;
    try {
      json = JSON.parse(r.stdout) as BackupJson;
    } catch {
      throw new Error(`vrb backup printed no JSON (exit ${r.code}): ${r.stderr}`);
    }
    return { r, json };
  }

  async function status(policy: string, check = false): Promise<{ code: number; json: StatusJson; stderr: string }> {
    const r = await vrb(["status", "--policy", policy, "--json", ...(check ? ["--check"] : [])]);
    return { code: r.code, json: JSON.parse(r.stdout) as StatusJson, stderr: r.stderr };
  }

  async function list(policy: string): Promise<ListJson> {
    const r = await vrb(["list", "--policy", policy, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as ListJson;
  }

  beforeAll(async () => {
    env = sharedEnvOf(product);
    dir = tempDir("scheduled-drill");
    const c = rootClient(env);
    try {
      await ensureKvV2(c, mount);
      await kvPut(c, mount, "canary", { alive: run });
      for (let i = 0; i < 5; i++) await kvPut(c, mount, `app/s${i}`, { v: `${run}-${i}` });
    } finally {
      await c.close();
    }
    keysFile = join(dir, "init.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold, root_token: env.keys!.rootToken }), {
      mode: 0o600,
    });
  });

  describe("a due drill after a backup", () => {
    const cluster = `sd-ok-${product}`;
    let policy: string;
    let first: BackupJson;

    beforeAll(() => {
      policy = policyFile(cluster, { drill: { every: "7d", unsealKeysFile: keysFile }, retention: { keepLast: 1 } });
    });

    it("runs, passes (canary, keys per mount against the manifest) and records its RTO beside the snapshot", async () => {
      const { r, json } = await backup(policy);
      expect(r.code, r.stderr).toBe(0);
      first = json;
      expect(json.drill).toMatchObject({ state: "passed", key: json.key, throwaway: { product } });
      expect(json.drill!.rtoSeconds).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/drill: due \(no drill has passed yet\)/);
      expect(r.stderr).toMatch(new RegExp(`mount ${mount}/ \\(kv\\): \\d+ keys, as the manifest counted`));

      const s = await status(policy, true);
      expect(s.code, s.stderr).toBe(0);
      expect(s.json.lastPassedDrill).toMatchObject({ ok: true, key: json.key, rtoSeconds: json.drill!.rtoSeconds });
      expect(s.json.drillEvery).toBe("7d");
      expect(s.json.operations.drill).toMatchObject({ runs: 1, consecutiveFailures: 0 });
      const listed = await list(policy);
      expect(listed.snapshots.find((x) => x.key === json.key)!.drill).toMatchObject({ ok: true, rtoSeconds: json.drill!.rtoSeconds });
    });

    it("is not run again while one passed within drill.every; retention keeps the newest drilled snapshot", async () => {
      const second = await backup(policy);
      expect(second.r.code, second.r.stderr).toBe(0);
      expect(second.json.drill).toMatchObject({ state: "not-due", reason: expect.stringMatching(/a drill passed .* ago/) });
      const third = await backup(policy);
      expect(third.json.drill!.state).toBe("not-due");
      const s = await status(policy);
      expect(s.json.operations.drill!.runs).toBe(1);
      const listed = await list(policy);
      expect(listed.snapshots.find((x) => x.key === second.json.key)!.drill).toBeUndefined();

      // keepLast 1: the newest snapshot, and the newest one a drill proved, stay; the one between goes.
      const pruned = await vrb(["prune", "--policy", policy, "--json"]);
      expect(pruned.code, pruned.stderr).toBe(0);
      const report = JSON.parse(pruned.stdout) as { kept: { key: string; reason: string }[]; deleted: { key: string }[]; locked: { key: string }[] };
      expect(report.kept).toEqual([
        { key: third.json.key, reason: expect.stringMatching(/newest good snapshot/) },
        { key: first.key, reason: expect.stringMatching(/newest snapshot whose drill passed/) },
      ]);
      expect([...report.deleted, ...report.locked].map((d) => d.key)).toEqual([second.json.key]);
    });
  });

  it("a drill that cannot run here is skipped with why, never a pass: no local binary, a keys file missing, no disk space", async () => {
    const cluster = `sd-skip-${product}`;
    const noTools = { VRB_TOOLS_BIN: tempDir("no-tools") };
    const policy = policyFile(cluster, { drill: { every: "7d", unsealKeysFile: keysFile } });
    const { r, json } = await backup(policy, noTools);
    expect(r.code, r.stderr).toBe(0);
    expect(json.drill).toMatchObject({
      state: "skipped",
      key: json.key,
      reason: expect.stringMatching(/^no local binary of (OpenBao|HashiCorp Vault) [\d.]+, the snapshot's source: /),
    });
    expect(r.stderr).toMatch(/drill: SKIPPED: no local binary/);
    expect(r.stderr).not.toMatch(/starting \d+ fresh node/);

    // Still due (a skip is no pass): the next backup tries again, and finds the keys file gone.
    const gone = policyFile(cluster, { drill: { every: "7d", unsealKeysFile: join(dir, "no-such-init.json") } });
    const again = await backup(gone);
    expect(again.r.code, again.r.stderr).toBe(0);
    expect(again.json.drill).toMatchObject({ state: "skipped", reason: expect.stringMatching(/^drill\.unsealKeysFile .*no-such-init\.json does not exist on this machine$/) });

    // Not enough room for the throwaway node (the free space measured is replaced: no test can fill a disk).
    const s3 = s3For(env);
    try {
      const full = await drillAfterBackup({
        // The keys file back in the policy (the file `gone` rewrote): the disk is what stops this one.
        policy: validatePolicy(JSON.parse(readFileSync(policyFile(cluster, { drill: { every: "7d", unsealKeysFile: keysFile } }), "utf8"))),
        store: s3StoreOn(s3, env.bucket!, prefix),
        snapshot: { key: again.json.key, bytes: again.json.bytes, vault: again.json.vault },
        freeBytes: () => 1024 * 1024,
      });
      expect(full).toMatchObject({
        state: "skipped",
        reason: expect.stringMatching(
          /^not enough disk space in .*: 1\.0 MiB free, the drill needs about [\d.]+ MiB for the [\d.]+ MiB snapshot; free some or set drill\.workDir$/,
        ),
      });
    } finally {
      s3.destroy();
    }

    const s = await status(policy, true);
    expect(s.code).toBe(1);
    expect(s.json.lastSkippedDrill).toMatchObject({ key: again.json.key, skipped: expect.stringMatching(/not enough disk space/) });
    expect(s.json.operations.drill).toMatchObject({ runs: 3, consecutiveFailures: 3, lastError: { stage: "drill skipped" } });
    expect(s.json.lastPassedDrill).toBeUndefined();
    expect(s.json.check!.problems).toEqual([
      expect.stringMatching(/^no drill has passed yet \(drill\.every 7d \+ one schedule window 6h\); the last drill was skipped .*not enough disk space/),
    ]);
    const listed = await list(policy);
    expect(listed.snapshots.find((x) => x.key === json.key)!.drill).toMatchObject({ ok: false, skipped: expect.stringMatching(/no local binary/) });
    expect(listed.snapshots.every((x) => x.status === "good")).toBe(true);
  });

  it("a snapshot the policy's identity cannot decrypt fails its drill: backup exit 1, status --check red, the snapshot stays listed", async () => {
    const cluster = `sd-enc-${product}`;
    const recipient = await identityToRecipient(await generateX25519Identity());
    const wrongIdentity = join(dir, "wrong.agekey");
    writeFileSync(wrongIdentity, `${await generateX25519Identity()}\n`, { mode: 0o600 });
    const policy = policyFile(cluster, { encryption: { age: [recipient] }, drill: { every: "7d", unsealKeysFile: keysFile, identityFile: wrongIdentity } });
    const { r, json } = await backup(policy);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/vrb: error \[stage: drill\]: the drill of s3:\/\/.* failed: /);
    expect(json).toMatchObject({ ok: false, exitCode: 1, drill: { state: "failed", key: json.key } });
    expect(json.drill!.problems!.join(" ")).toMatch(/identit/i);

    const s = await status(policy, true);
    expect(s.code).toBe(1);
    expect(s.json.lastDrill).toMatchObject({ ok: false, key: json.key });
    expect(s.json.check!.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^the newest drill \(.*\) failed: .*identit/i), expect.stringMatching(/^no drill has passed yet/)]),
    );
    expect(s.stderr).toMatch(new RegExp(`check failed: ${cluster}: the newest drill`));
    // Failed, never hidden: the snapshot is still good and listed, with its verdict.
    const listed = await list(policy);
    expect(listed.snapshots.find((x) => x.key === json.key)).toMatchObject({ status: "good", drill: { ok: false } });
    const text = await vrb(["list", "--policy", policy]);
    expect(text.stdout).toMatch(new RegExp(`DRILL FAILED.*${json.key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  });
});
