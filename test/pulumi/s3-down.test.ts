import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server, type Socket, connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLockedBucket, localS3Client, startS3Server, stopS3Server, type LocalS3Server } from "../../devenv/s3server.js";
import { packageRoot } from "../../engine/package-info.js";
import { testPolicy } from "../providers/support.js";
import { sharedEnv, tempDir } from "../support/env.js";
import { BACKUP_MAIN, listKeys, PulumiProject, resourceOf, SNAPSHOT_TYPE, W1, type PulumiResult } from "./support.js";

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
