import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { checkStoredSnapshot, runBackup, SnapshotStore, validatePolicy } from "../../engine/index.js";
import { createLockedBucket, localS3Client, startS3Server, stopS3Server, type LocalS3Server } from "../../devenv/s3server.js";
import { sharedEnv, tempDir, backupOn, s3StoreOn } from "../support/env.js";

// moto implements SSE-KMS headers on S3 objects; SeaweedFS ignores them. So this runs on a moto
// server of its own, whatever VRB_S3_SERVER says.
const env = sharedEnv();
let server: LocalS3Server;
let s3: S3Client;
const KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";

beforeAll(async () => {
  server = await startS3Server(tempDir("bk-sse"), "moto");
  s3 = localS3Client(server);
  await createLockedBucket(s3, "vrb-sse");
});

afterAll(async () => {
  s3?.destroy();
  if (server) await stopS3Server(server);
});

describe("SSE-KMS and object lock on moto", () => {
  it("encrypts snapshot and manifest with the policy's KMS key, and sets retention on both explicitly", async () => {
    const policy = validatePolicy({
      cluster: { name: "bk-sse", nodes: env.nodes.map((n) => n.apiAddr) },
      destination: { bucket: "vrb-sse", endpoint: server.endpoint, forcePathStyle: true, kmsKeyId: KMS_KEY },
      objectLock: { mode: "COMPLIANCE", days: 2 },
    });
    const report = await runBackup(backupOn(s3, { policy, token: env.keys!.rootToken }));
    expect(report.sse).toEqual({ algorithm: "aws:kms", kmsKeyId: KMS_KEY });
    for (const key of [report.key, report.manifestKey]) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: "vrb-sse", Key: key }));
      expect(head.ServerSideEncryption).toBe("aws:kms");
      expect(head.SSEKMSKeyId).toBe(KMS_KEY);
      expect(head.ObjectLockMode).toBe("COMPLIANCE");
    }
    expect(report.lock?.mode).toBe("COMPLIANCE");
    const health = await checkStoredSnapshot(new SnapshotStore(s3StoreOn(s3, "vrb-sse")), report.key, { deep: true });
    expect(health.status).toBe("good");
    expect(health.manifest?.sse).toEqual({ algorithm: "aws:kms", kmsKeyId: KMS_KEY });
  });
});
