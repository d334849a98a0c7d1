import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket, connect } from "node:net";
import { join } from "node:path";
import { DeleteObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createLockedBucket, localS3Client, startS3Server, stopS3Server, type LocalS3Server } from "../../devenv/s3server.js";
import { packageRoot } from "../../engine/package-info.js";
import { plainOccurrences, s3CredentialEnv, testPolicy } from "../providers/support.js";
import { sharedEnv, s3For, tempDir } from "../support/env.js";
import { PulumiProject, requirePulumiPeers, resourceOf, type PulumiResult } from "./support.js";

/**
 * The backup stack program (stacks/backup, `manage: snapshotsOnly`) and a small program with an
 * unknown input, run by the real Pulumi CLI and engine (file backend, passphrase secrets) against
 * the shared OpenBao cluster and S3 server. The Node.js program is launched by the kit's own
 * minimal language host (tools/go/pulumi/languagehost); everything else is Pulumi's.
 */
const SNAPSHOT_TYPE = "pulumi-nodejs:dynamic/vault-raft-backup:VaultSnapshot";
const BACKUP_MAIN = join(packageRoot(), "dist", "stacks", "backup", "index.js");
const W1 = "2024-05-01T06:00:00Z";
const W2 = "2024-05-01T12:00:00Z";

async function listKeys(s3: S3Client, bucket: string, prefix: string, suffix = ".snap"): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith(suffix));
}

/** Every stored version of every snapshot under the prefix (a delete marker hides an object, it does not remove it). */
async function listVersions(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const r = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  return (r.Versions ?? []).map((v) => v.Key!).filter((k) => k.endsWith(".snap"));
}

beforeAll(() => requirePulumiPeers());

describe("VaultSnapshot under the real Pulumi engine (stacks/backup, manage: snapshotsOnly)", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const policy = testPolicy(env, "pulumi");
  const bucket = env.bucket!;
  const prefix = policy.destination!.prefix!;
  const s3 = s3For(env);
  const project = new PulumiProject("vault-raft-backup", BACKUP_MAIN, s3CredentialEnv(env));
  const taken: string[] = [];
  const snapshotState = async () => {
    const exported = await project.exportStack();
    return resourceOf(exported, SNAPSHOT_TYPE);
  };

  beforeAll(async () => {
    await project.init(
      { "vault-raft-backup:policy": policy, "vault-raft-backup:manage": "snapshotsOnly", "vault-raft-backup:window": W1 },
      { "vault-raft-backup:vaultToken": token },
    );
  });
  afterAll(() => s3.destroy());

  it("preview plans one snapshot and takes none", async () => {
    const r = await project.ok(["preview", "--diff"]);
    expect(r.stdout).toMatch(/\+ pulumi-nodejs:dynamic\/vault-raft-backup:VaultSnapshot: \(create\)/);
    expect(r.stdout).toMatch(/\+ 2 to create/); // the stack and the snapshot
    expect(await listKeys(s3, bucket, prefix)).toEqual([]);
  });

  it("up takes one snapshot: in the bucket, in the stack outputs, status good", async () => {
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/\+ 2 created|2 created/);
    const keys = await listKeys(s3, bucket, prefix);
    expect(keys).toHaveLength(1);
    const out = await project.outputs();
    expect(out).toMatchObject({ manages: "snapshotsOnly", window: W1, snapshotStatus: "good", snapshotKey: keys[0], bucketName: bucket, prefix });
    // snapshotsOnly manages no Vault role and no bucket: those outputs are absent.
    expect(out.snapshotPolicyName).toBeUndefined();
    taken.push(keys[0]!);
    const [snap] = await snapshotState();
    expect(snap!.id).toBe(`s3://${bucket}/${keys[0]}`);
    expect(snap!.outputs).toMatchObject({ status: "good", window: W1, key: keys[0] });
  });

  it("a second up in the same window takes none", async () => {
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/2 unchanged/);
    expect(await listKeys(s3, bucket, prefix)).toEqual(taken);
    expect((await project.outputs()).snapshotKey).toBe(taken[0]);
  });

  it("a new window replaces it: a new snapshot, the old one stays in the bucket", async () => {
    await project.setConfig({ "vault-raft-backup:window": W2 });
    const preview = await project.ok(["preview", "--diff"]);
    expect(preview.stdout).toMatch(/\+-\s*pulumi-nodejs:dynamic\/vault-raft-backup:VaultSnapshot: \(replace\)/);
    expect(preview.stdout).toMatch(/\[diff: ~window\]|~ window/);
    const r = await project.ok(["up", "--yes"]);
    expect(r.stdout).toMatch(/1 replaced/);
    const keys = await listKeys(s3, bucket, prefix);
    expect(keys).toHaveLength(2);
    const out = await project.outputs();
    expect(out.window).toBe(W2);
    expect(taken).not.toContain(out.snapshotKey);
    expect(keys.sort()).toEqual([...taken, out.snapshotKey as string].sort());
    // The replaced resource's delete left its snapshot in place, and said so.
    expect(r.output).toMatch(/leaving s3:\/\/\S+ in place \(object-locked until [^)]+\): snapshots are removed only by retention/);
    taken.push(out.snapshotKey as string);
  });

  it("refresh finds the snapshot deleted from the bucket (status missing); the next up takes a new one", async () => {
    const current = taken.at(-1)!;
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: current }));
    const r = await project.ok(["refresh", "--yes", "--diff"]);
    expect(r.output).toMatch(new RegExp(`s3://${bucket}/${current.replace(/[.]/g, "\\.")} is missing`));
    expect(r.stdout).toMatch(/1 updated/);
    // What the user sees: the drift, field by field.
    expect(r.stdout).toMatch(/~ status\s*: "good" => "missing"/);
    const [snap] = await snapshotState();
    expect(snap!.outputs).toMatchObject({ status: "missing", key: current });
    expect((snap!.outputs!.problems as string[]).join(" ")).toMatch(/\S/);
    // Stack outputs come from the program, which refresh does not run: they change with the next up.

    const preview = await project.ok(["preview", "--diff"]);
    expect(preview.stdout).toMatch(/\(replace\)/);
    await project.ok(["up", "--yes"]);
    const out = await project.outputs();
    expect(out.snapshotStatus).toBe("good");
    expect(out.snapshotKey).not.toBe(current);
    expect(await listKeys(s3, bucket, prefix)).toContain(out.snapshotKey);
    taken.push(out.snapshotKey as string);
  });

  it("refresh finds a damaged snapshot (status corrupt)", async () => {
    const current = taken.at(-1)!;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: current, Body: randomBytes(2048) }));
    const r = await project.ok(["refresh", "--yes"]);
    expect(r.output).toMatch(/ is (corrupt|incomplete): /);
    const [snap] = await snapshotState();
    expect(["corrupt", "incomplete"]).toContain(snap!.outputs!.status);
  });

  it("destroy forgets the resource and keeps every snapshot in the bucket", async () => {
    const versionsBefore = await listVersions(s3, bucket, prefix);
    const r = await project.ok(["destroy", "--yes"]);
    expect(r.output).toMatch(/leaving s3:\/\/\S+ in place/);
    expect(r.stdout).toMatch(/2 deleted/);
    expect(await snapshotState()).toEqual([]);
    // Every snapshot ever taken is still stored: the visible ones and the one hidden by the test's delete marker.
    const versions = await listVersions(s3, bucket, prefix);
    expect(versions.sort()).toEqual(versionsBefore.sort());
    for (const k of taken) expect(versions).toContain(k);
  });

  it("the token is never in plain text: not in the exported state, the backend's files, the stack file or any CLI output", async () => {
    const exported = await project.exportStack();
    expect(plainOccurrences(exported, token)).toEqual([]);
    const files = project.rawFiles();
    // The backend kept the history of every update (state files with the token as ciphertext).
    expect(files.some((f) => f.path.includes(`${join("backend", ".pulumi")}`) && f.text.includes("VaultSnapshot"))).toBe(true);
    expect(files.some((f) => f.text.includes('"secure"') || f.text.includes("secure:"))).toBe(true);
    for (const f of files) expect(f.text.includes(token), f.path).toBe(false);
    expect(project.transcript.length).toBeGreaterThan(8);
    for (const out of project.transcript) expect(out.includes(token)).toBe(false);
  });
});

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

/**
 * A TCP relay on a fixed port to the test's own S3 server, so a restarted server keeps the
 * stack's endpoint. While S3 is down the port is held by a socket that is bound but not listening:
 * connections are refused, as they are when an S3 endpoint is down, and no server that another
 * test starts meanwhile can take the port (one did once, and answered the upload in another
 * protocol). Node cannot bind a TCP socket without listening; the tools' Python can.
 */
class Relay {
  private server?: Server;
  private holder?: ChildProcess;
  private sockets = new Set<Socket>();
  port = 0;
  async up(target: URL): Promise<void> {
    await this.release();
    this.server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(a);
        a.on("close", () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.on("error", () => a.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, "127.0.0.1", r));
    this.port = (this.server.address() as { port: number }).port;
  }
  /** Stops relaying; `hold`: keep the port refusing connections until the next `up`. */
  async down(hold = true): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = undefined;
    if (!hold) return this.release();
    if (!this.port) return;
    const python = join(packageRoot(), ".tools", "venv", "bin", "python");
    const script = `import socket, sys, time\ns = socket.socket()\ns.bind(("127.0.0.1", ${this.port}))\nprint("held", flush=True)\ntime.sleep(3600)`;
    const holder = spawn(python, ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    this.holder = holder;
    await new Promise<void>((resolve, reject) => {
      let err = "";
      holder.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      holder.stdout!.once("data", () => resolve());
      holder.once("exit", (code) => reject(new Error(`could not hold port ${this.port} while S3 is down (exit ${code}): ${err}`)));
    });
  }
  async release(): Promise<void> {
    const holder = this.holder;
    this.holder = undefined;
    if (!holder || holder.exitCode !== null) return;
    await new Promise<void>((r) => {
      holder.once("exit", () => r());
      holder.kill("SIGKILL");
    });
  }
}

describe("S3 down under the real engine", () => {
  const env = sharedEnv();
  const token = env.keys!.rootToken;
  const relay = new Relay();
  const dir = tempDir("pulumi-s3down");
  let server: LocalS3Server | undefined;
  let project: PulumiProject;

  const startS3 = async () => {
    server = await startS3Server(join(dir, `s3-${Date.now()}`), "moto");
    const s3 = localS3Client(server);
    await createLockedBucket(s3, "vrb-pulumi-down");
    s3.destroy();
    await relay.up(new URL(server.endpoint));
  };

  beforeAll(async () => {
    await startS3();
    const policy = {
      ...testPolicy(env, "pulumi-down"),
      destination: { bucket: "vrb-pulumi-down", prefix: "down/", region: "us-east-1", endpoint: `http://127.0.0.1:${relay.port}`, forcePathStyle: true },
    };
    project = new PulumiProject("vault-raft-backup", BACKUP_MAIN, {
      AWS_ACCESS_KEY_ID: server!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server!.secretAccessKey,
      AWS_REGION: "us-east-1",
    });
    await project.init(
      { "vault-raft-backup:policy": { ...policy, backup: { retries: 0 } }, "vault-raft-backup:manage": "snapshotsOnly", "vault-raft-backup:window": W1 },
      { "vault-raft-backup:vaultToken": token },
    );
  });
  afterAll(async () => {
    await relay.down(false);
    if (server) await stopS3Server(server);
  });

  it("the up fails with our message, the snapshot is not in the state; once S3 is back the next up takes it", async () => {
    await relay.down();
    await stopS3Server(server!);
    server = undefined;
    const failed: PulumiResult = await project.run(["up", "--yes"]);
    expect(failed.code).not.toBe(0);
    // The engine's own words, through the provider: which stage failed and why (after its retries).
    expect(failed.output).toMatch(/VaultSnapshot local-snapshot \*\*creating failed\*\* error: upload failed: connect ECONNREFUSED 127\.0\.0\.1:\d+/);
    expect(failed.output).toMatch(/VaultSnapshot: warning: could not record the backup run in s3:\/\/vrb-pulumi-down\/down\/local\/vrb-status\.json/);
    expect(resourceOf(await project.exportStack(), SNAPSHOT_TYPE)).toEqual([]);

    await startS3();
    await project.ok(["up", "--yes"]);
    const out = await project.outputs();
    expect(out.snapshotStatus).toBe("good");
    const s3 = localS3Client(server!);
    try {
      expect(await listKeys(s3, "vrb-pulumi-down", "down/")).toEqual([out.snapshotKey]);
    } finally {
      s3.destroy();
    }
    for (const t of project.transcript) expect(t.includes(token)).toBe(false);
    // The failing up rides the engine's S3 retries (about a minute) before it gives up.
  }, 360_000);
});
