import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { CreateBucketCommand, HeadBucketCommand, PutBucketVersioningCommand, PutObjectLockConfigurationCommand, type S3Client } from "@aws-sdk/client-s3";
import { OperationError } from "../engine/errors.js";
import { createS3Client } from "../engine/storage/s3/client.js";
import { waitFor } from "../engine/wait.js";
import { freePort } from "../engine/throwaway/ports.js";
import { isAlive, startDetached, stopProcess, tailLog } from "../engine/throwaway/process.js";
import { toolPath } from "../engine/throwaway/binaries.js";

/** Which S3-API server backs the local environment and the tests (VRB_S3_SERVER). */
export type S3ServerKind = "seaweedfs" | "moto";

export interface LocalS3Server {
  kind: S3ServerKind;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  logPath: string;
  pid?: number;
}

export function s3ServerKindFromEnv(env: NodeJS.ProcessEnv = process.env): S3ServerKind {
  const v = (env.VRB_S3_SERVER ?? "seaweedfs").toLowerCase();
  if (v !== "seaweedfs" && v !== "moto") {
    throw new OperationError(`VRB_S3_SERVER=${v} is not supported; use 'seaweedfs' or 'moto'`);
  }
  return v;
}

/** Starts the S3 server on free 127.0.0.1 ports and waits until it answers S3 calls. */
export async function startS3Server(dir: string, kind: S3ServerKind): Promise<LocalS3Server> {
  const dataDir = join(dir, `s3-${kind}`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logPath = join(dir, `s3-${kind}.log`);
  // Local-only credentials: these servers accept any signature; real AWS takes the SDK chain.
  const server: LocalS3Server = {
    kind,
    endpoint: "",
    region: "us-east-1",
    accessKeyId: "vrblocal",
    secretAccessKey: "vrblocal-secret",
    dataDir,
    logPath,
  };
  if (kind === "seaweedfs") {
    // weed puts each gRPC port at http+10000: reserve both.
    const [master, volume, filer, s3, admin] = [await freePort([10000]), await freePort([10000]), await freePort([10000]), await freePort([10000]), await freePort([10000])];
    server.endpoint = `http://127.0.0.1:${s3}`;
    server.pid = startDetached(
      toolPath("weed"),
      [
        "mini",
        `-dir=${dataDir}`,
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        `-master.port=${master}`,
        `-volume.port=${volume}`,
        `-filer.port=${filer}`,
        `-s3.port=${s3}`,
        `-admin.port=${admin}`,
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=256",
      ],
      logPath,
      { ...process.env, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" },
      dataDir,
    );
  } else {
    const port = await freePort();
    server.endpoint = `http://127.0.0.1:${port}`;
    server.pid = startDetached(toolPath("moto_server"), ["-H", "127.0.0.1", "-p", String(port)], logPath, process.env, dataDir);
  }
  const s3 = localS3Client(server);
  try {
    await waitFor(
      async () => {
        if (!s3ServerRunning(server)) {
          throw new OperationError(`${kind} S3 server exited during start-up; log ${logPath}:\n${tailLog(logPath)}`);
        }
        try {
          await s3.send(new HeadBucketCommand({ Bucket: "vrb-probe" }));
          return true;
        } catch (err) {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          // 404/403 means the S3 API is answering.
          return status === 404 || status === 403 ? true : undefined;
        }
      },
      { what: `${kind} S3 server on ${server.endpoint} (log: ${logPath})`, timeoutMs: 60_000, intervalMs: 250 },
    );
  } catch (err) {
    await stopProcess(server.pid, { marker: processMarker(server) });
    throw err;
  } finally {
    s3.destroy();
  }
  return server;
}

/** What only our server's command line contains (see isAlive). */
function processMarker(server: LocalS3Server): string {
  return server.kind === "seaweedfs" ? `-dir=${server.dataDir}` : `-p ${new URL(server.endpoint).port}`;
}

export function s3ServerRunning(server: LocalS3Server): boolean {
  return isAlive(server.pid, { marker: processMarker(server) });
}

export async function stopS3Server(server: LocalS3Server): Promise<void> {
  await stopProcess(server.pid, { graceMs: 10_000, marker: processMarker(server) });
  server.pid = undefined;
}

export function localS3Client(server: LocalS3Server): S3Client {
  return createS3Client(
    { endpoint: server.endpoint, region: server.region, forcePathStyle: true },
    { credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  );
}

/** Creates a bucket with object lock enabled at creation (the only time S3 allows it) and versioning. */
export async function createLockedBucket(s3: S3Client, bucket: string, defaultRetention?: { mode: "GOVERNANCE" | "COMPLIANCE"; days: number }): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: "Enabled" } }));
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: bucket,
      ObjectLockConfiguration: {
        ObjectLockEnabled: "Enabled",
        Rule: defaultRetention ? { DefaultRetention: { Mode: defaultRetention.mode, Days: defaultRetention.days } } : undefined,
      },
    }),
  );
}
