import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { BOUNDED_HEAP_FLAGS, openStore, scheduleWindow, StatusStore, statusKeyFor, validatePart, destinationSchema, type BackupPolicyInput } from "../../engine/index.js";
import { parseStatusRecord } from "../../engine/status/record.js";
import { sharedEnv, s3For, s3StoreOn } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { alive, argvOf, childrenOf, until } from "../support/processes.js";
import { ProviderHost, type Props } from "./host.js";
import { runHarness, s3CredentialEnv, testPolicy, type Registered } from "./support.js";

/**
 * VaultSnapshot's backup as `pulumi up` runs it, under Pulumi's own dynamic-provider host: in a Node
 * process of its own started with the CLI's heap settings (the host has Node's defaults), stopped
 * cleanly when the host dies, and recorded in the status objects of the primary and every copy
 * exactly as `vrb backup` records it.
 */
describe("VaultSnapshot's backup process", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const window = scheduleWindow("6h").id;
  const cluster = env.clusterName;
  const dirs: string[] = [];
  let host: ProviderHost | undefined;
  const dir = (tag: string) => {
    const d = mkdtempSync(join(tmpdir(), `vrb-provider-${tag}-`));
    dirs.push(d);
    return d;
  };

  /** A started host and the checked inputs of a VaultSnapshot with `policy`. */
  async function snapshotOf(policy: BackupPolicyInput): Promise<{ host: ProviderHost; inputs: Props }> {
    const registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys: env.keys!.unsealKeysB64, window });
    const snap = registered.find((r) => r.name === "snap")!;
    host = await ProviderHost.start("VaultSnapshot", s3CredentialEnv(env));
    const checked = await host.check({}, { ...snap.inputs, token, __provider: snap.provider });
    expect(checked.failures).toEqual([]);
    return { host, inputs: checked.inputs };
  }

  /** The host's children running engine work in a process of its own (engine/own-process/main.js). */
  const ownProcessesOf = (h: ProviderHost) => childrenOf(h.pid).filter((pid) => argvOf(pid).some((a) => a.endsWith(join("own-process", "main.js"))));

  /** The cluster's status record in `destination`'s store. */
  async function statusIn(destination: Record<string, unknown>) {
    const store = await openStore(validatePart(destinationSchema, destination, ["destination"]));
    try {
      return (await new StatusStore(store).read(cluster)).record;
    } finally {
      store.close();
    }
  }

  afterEach(async () => {
    await host?.stop();
    host = undefined;
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("runs with the bounded heap; the host killed mid-upload: the backup stops, nothing is left half-done, the run is recorded as failed", async () => {
    const s3 = s3For(env);
    // Every write to S3 held 5 s: the kill lands while the upload is under way.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, fault: { kind: "delay", ms: 5_000 } }];
    try {
      const base = testPolicy(env, "process");
      const destination = { bucket: env.bucket!, prefix: `providers-process-${randomBytes(3).toString("hex")}/`, region: env.s3!.region, forcePathStyle: true };
      const policy: BackupPolicyInput = { ...base, objectLock: undefined, destination: { ...destination, endpoint: proxy.url } };
      const prefix = destination.prefix;
      const { host, inputs } = await snapshotOf(policy);
      const created = host.create(inputs);
      created.catch(() => undefined);
      await host.logLine(/VaultSnapshot: raft index \d+ .*uploading to s3:\/\//, 120_000);
      const [worker] = ownProcessesOf(host);
      expect(worker, `a child of the host running the backup; host stderr:\n${host.logs.stderr}`).toBeDefined();
      const argv = argvOf(worker!);
      for (const flag of BOUNDED_HEAP_FLAGS) expect(argv).toContain(flag);
      // The token went over the IPC channel: never on the child's command line.
      expect(argv.join(" ")).not.toContain(token);

      process.kill(host.pid, "SIGKILL");
      await expect(created).rejects.toThrow();
      await until("the backup's process to exit", () => (alive(worker!) ? undefined : true), 60_000);
      await host.logLine(/the process that started this one ended: stopping/, 10_000);

      // Past the proxy's hold: a held request that reached S3 late would show up now.
      await new Promise((r) => setTimeout(r, 6_000));
      const objects = await s3.send(new ListObjectsV2Command({ Bucket: env.bucket!, Prefix: `${prefix}${cluster}/` }));
      const keys = (objects.Contents ?? []).map((o) => o.Key!);
      expect(
        keys.filter((k) => k.endsWith(".manifest.json")),
        host.logs.stderr,
      ).toEqual([]);
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket!, Prefix: prefix }));
      expect(uploads.Uploads ?? []).toEqual([]);
      const stored = await s3StoreOn(s3, env.bucket!, "").readText(statusKeyFor(prefix, cluster));
      const record = parseStatusRecord(stored!.text);
      expect(record?.operations.backup).toMatchObject({ lastAttemptOk: false, lastError: { kind: "InterruptedError" } });
      expect(record?.operations.backup?.lastSuccess).toBeUndefined();
    } finally {
      await proxy.stop();
      s3.destroy();
    }
  });

  it("the host killed during the drill after the backup: the drill's throwaway servers stop and their data goes, the snapshot stays stored and good, no drill verdict is recorded", async () => {
    const primary = { type: "file", path: dir("drill-primary"), prefix: "snapshots/" };
    const workDir = dir("drill-work");
    const keysFile = join(dir("drill-keys"), "init.json");
    writeFileSync(keysFile, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold }), { mode: 0o600 });
    const policy = { ...testPolicy(env, "process-drill"), objectLock: undefined, destination: primary } as BackupPolicyInput;
    const drill = { every: "7d", unsealKeysFile: keysFile, workDir };
    const registered = await runHarness<Registered[]>("serialize.mjs", { policy, token, unsealKeys: env.keys!.unsealKeysB64, window, drill });
    const snap = registered.find((r) => r.name === "snap")!;
    host = await ProviderHost.start("VaultSnapshot", s3CredentialEnv(env));
    const checked = await host.check({}, { ...snap.inputs, token, __provider: snap.provider });
    expect(checked.failures).toEqual([]);
    const created = host.create(checked.inputs);
    created.catch(() => undefined);
    // The backup is stored; the drill has started its throwaway node and is restoring into it.
    const log = await host.logLine(/drill: starting \d+ fresh node\(s\) in \S+[\s\S]*download and verify snapshot \.\.\./, 150_000);
    const nodesDir = /drill: starting \d+ fresh node\(s\) in (\S+)/.exec(log)![1]!;
    const [worker] = ownProcessesOf(host);
    expect(worker, host.logs.stderr).toBeDefined();
    const servers = childrenOf(worker!).filter((pid) => argvOf(pid).join(" ").includes(nodesDir));
    expect(servers, `the drill's servers under ${nodesDir}; host stderr:\n${host.logs.stderr}`).not.toEqual([]);

    process.kill(host.pid, "SIGKILL");
    await expect(created).rejects.toThrow();
    await until("the backup's process to exit", () => (alive(worker!) ? undefined : true), 90_000);
    expect(servers.filter(alive), host.logs.stderr).toEqual([]);
    expect(
      readdirSync(workDir).filter((d) => d.startsWith("vrb-drill-")),
      host.logs.stderr,
    ).toEqual([]);
    expect(host.logs.stderr).toMatch(/the process that started this one ended: stopping/);
    expect(host.logs.stderr).toMatch(/the throwaway cluster is gone/);
    // What to do next names the scheduled drill's own way to run it again, not a CLI command's.
    expect(host.logs.stderr).toMatch(/next: drill it again with 'vrb drill <key>'\./);
    expect(host.logs.stderr).not.toMatch(/run the same command again/);
    // A scheduled drill's waits have no setting of their own: no CLI flag is offered for them.
    expect(host.logs.stderr).toMatch(/waits for nodes to receive and apply it may take up to/);
    expect(host.logs.stderr).not.toMatch(/--step-timeout/);

    // The backup finished before the drill began: its snapshot is stored, good and recorded.
    const record = await statusIn(primary);
    expect(record?.operations.backup).toMatchObject({ lastAttemptOk: true });
    const key = record?.newestGood?.key;
    expect(key).toMatch(/\.snap$/);
    // A drill that was stopped says nothing of the snapshot: no verdict, passed or failed.
    expect(record?.drills?.[key!]).toBeUndefined();
    expect(record?.lastPassedDrill).toBeUndefined();
  });

  it("an engine error crosses back as itself: a missing bucket fails create naming the field, before anything is written", async () => {
    const base = testPolicy(env, "missing");
    const bucket = `vrb-missing-${randomBytes(3).toString("hex")}`;
    const policy: BackupPolicyInput = { ...base, objectLock: undefined, destination: { ...(base.destination as object), bucket } } as BackupPolicyInput;
    const { host, inputs } = await snapshotOf(policy);
    await expect(host.create(inputs)).rejects.toThrow(new RegExp(`${bucket}.*\\(field: destination\\.bucket\\)`, "s"));
    expect(host.logs.stderr).not.toMatch(/raft index/);
  });

  it("a deep refresh that outlives deadlineMs fails naming it, and its download stops", async () => {
    const policy: BackupPolicyInput = { ...testPolicy(env, "deadline"), objectLock: undefined };
    const { host, inputs } = await snapshotOf(policy);
    const created = await host.create(inputs);
    // The same snapshot's refresh with every read of S3 held 60 s, under the shortest deadline.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "GET", share: 1, fault: { kind: "delay", ms: 60_000 } }];
    try {
      const state = { ...created.outs, deadlineMs: 10_000, destination: { ...(created.outs.destination as object), endpoint: proxy.url } };
      const started = Date.now();
      await expect(host.read(created.id, state, inputs)).rejects.toThrow(/did not finish within 10s \(deadlineMs\)/);
      expect(Date.now() - started).toBeLessThan(30_000);
      await until("the refresh's process to exit", () => (ownProcessesOf(host).length ? undefined : true), 10_000);
    } finally {
      await proxy.stop();
    }
  });

  it("a copy's own status record gets the run, as with `vrb backup`", async () => {
    const primary = { type: "file", path: dir("primary"), prefix: "snapshots/" };
    const nas = { type: "file", path: dir("nas"), prefix: "vault/" };
    const policy: BackupPolicyInput = { ...testPolicy(env, "copy-ok"), objectLock: undefined, destination: primary, copies: [{ name: "nas", ...nas }] } as BackupPolicyInput;
    const { host, inputs } = await snapshotOf(policy);
    const { outs } = await host.create(inputs);
    expect(outs.copies).toMatchObject([{ name: "nas", ok: true }]);
    const copyRecord = await statusIn(nas);
    expect(copyRecord?.operations.backup).toMatchObject({ lastAttemptOk: true, consecutiveFailures: 0 });
    expect(copyRecord?.newestGood?.takenAt).toBe(outs.takenAt);
  });

  it("onCopyFailure fail: a refused copy fails the resource, and the primary's status record says so", async () => {
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    // Reads (the bucket check) pass; every write of the copy is refused.
    proxy.rules = [{ match: (req) => req.method === "PUT" || req.method === "POST", share: 1, fault: { kind: "s3-error", status: 403, code: "AccessDenied" } }];
    try {
      const primary = { type: "file", path: dir("primary-fail"), prefix: "snapshots/" };
      const offsite = { ...testPolicy(env, "copy-refused").destination, endpoint: proxy.url };
      const policy = { ...testPolicy(env, "copy-fail"), objectLock: undefined, destination: primary, copies: [{ name: "offsite", ...offsite }] } as BackupPolicyInput;
      const { host, inputs } = await snapshotOf(policy);
      await expect(host.create(inputs)).rejects.toThrow(/copy 'offsite' failed/);
      const record = await statusIn(primary);
      expect(record?.operations.backup).toMatchObject({ lastAttemptOk: false, lastError: { stage: "copy offsite" } });
      // The primary's snapshot itself is stored and good.
      expect(record?.newestGood?.key).toMatch(/\.snap$/);
    } finally {
      await proxy.stop();
    }
  });
});
