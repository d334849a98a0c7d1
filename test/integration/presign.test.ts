import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, StorageSharedKeyCredential } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { startAzurite, stopAzurite, type LocalAzurite } from "../../devenv/azurite.js";
import { createGcsBucket, readGcsObject, startGcsServer, stopGcsServer, type LocalGcsServer } from "../../devenv/gcs-server.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { nodeClient, startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { kvGet } from "../../engine/vault/kv-v2.js";
import { cliEnv, putCanary, runVrb, s3For, sharedEnv, tempDir } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";

/**
 * Pre-signed URLs (docs/export.md), on the shared cluster and S3 server: a snapshot exported to a
 * pre-signed PUT URL of another bucket, presigned GET URLs of that copy, verify and a rebuild into
 * one fresh node from those URLs by a host without S3 credentials; a wrong --sha256 exits 3 with
 * the node untouched. No URL is ever printed whole by the commands that take them.
 */
const env = sharedEnv();
const s3 = s3For(env);
const id = randomBytes(3).toString("hex");
const cluster = `presign-${id}`;
const prefix = `presign-${id}/`;
const otherBucket = `handover-${id}`;
const canary = { path: `presign-canary-${id}`, value: randomBytes(12).toString("hex") };
const dir = tempDir("presign");
let backup: { key: string; sha256: string; bytes: number };
let node: LocalNode;

/** Signatures of every URL handed to a command: none may show up in its output. */
const signatures: string[] = [];
function sigOf(url: string): string {
  const params = new URL(url).searchParams;
  const sig = params.get("X-Amz-Signature") ?? params.get("X-Goog-Signature") ?? params.get("sig")!;
  // SigV4 (S3), an RSA-2048 signature (Cloud Storage V4), an HMAC-SHA256 (Azure SAS).
  expect(sig).toMatch(/^[0-9a-f]{64}$|^[0-9a-f]{512}$|^[A-Za-z0-9+/]{43}=$/);
  signatures.push(sig);
  return url;
}
function expectNoSignature(...texts: string[]): void {
  for (const t of texts) for (const s of signatures) expect(t.includes(s)).toBe(false);
}

/** A host that has the URLs but no S3 credentials and no Vault token. */
function urlOnlyEnv(): Record<string, string> {
  const e = cliEnv(env, { VAULT_TOKEN: "", BAO_TOKEN: "", HOME: dir });
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "VRB_BUCKET"]) delete e[k];
  return e;
}

/** `vrb export` of the backup to a PUT URL for the snapshot and one for its manifest. */
const exportTo = (toUrl: string, manifestUrl: string, ...extra: string[]) =>
  runVrb(["export", backup.key, "--cluster", cluster, "--prefix", prefix, "--to-url", toUrl, "--manifest-url", manifestUrl, ...extra], cliEnv(env));

const presignPut = (key: string) => getSignedUrl(s3, new PutObjectCommand({ Bucket: otherBucket, Key: key }), { expiresIn: 900 });

beforeAll(async () => {
  await putCanary(env, canary);
  const r = await runVrb(["backup", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
  expect(r.code, r.stderr).toBe(0);
  backup = JSON.parse(r.stdout) as typeof backup;
  await s3.send(new CreateBucketCommand({ Bucket: otherBucket }));
  [node] = await startFreshNodes(join(dir, "nodes"), 1, { idPrefix: "presign" });
});

afterAll(async () => {
  if (node) await stopNode(node);
  s3.destroy();
});

describe("pre-signed URLs: export, presign, verify and restore by URL", () => {
  let getUrls: { snapshotUrl: string; manifestUrl: string; sha256: string };

  it("vrb export streams the snapshot and its manifest to pre-signed PUT URLs of another bucket", async () => {
    const toUrl = sigOf(await presignPut(backup.key));
    const manifestUrl = sigOf(await presignPut(`${backup.key}.manifest.json`));
    const r = await exportTo(toUrl, manifestUrl, "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, key: backup.key, sha256: backup.sha256, bytes: backup.bytes });
    expect(JSON.parse(r.stdout).to).toMatch(/\?\[REDACTED\]$/);
    expectNoSignature(r.stdout, r.stderr);
    // Independent of the engine: the copy in the other bucket has the snapshot's bytes.
    const copy = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: otherBucket, Key: backup.key }))).Body!.transformToByteArray());
    expect(createHash("sha256").update(copy).digest("hex")).toBe(backup.sha256);
  });

  it("a PUT URL the store refuses (403 SignatureDoesNotMatch) ends with the reason, exit 1, and nothing printed whole", async () => {
    // SeaweedFS does not check pre-signed signatures: the refusal comes from the fault proxy in front of it.
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "PUT", share: 1, fault: { kind: "s3-error", status: 403, code: "SignatureDoesNotMatch" } }];
    try {
      const viaProxy = (url: string) => sigOf(url.replace(env.s3!.endpoint, proxy.url));
      const key = `${backup.key}.refused`;
      const r = await exportTo(viaProxy(await presignPut(key)), viaProxy(await presignPut(`${key}.manifest.json`)));
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/PUT http:\/\/127\.0\.0\.1:\d+\/.*\?\[REDACTED\] was refused \(HTTP 403 SignatureDoesNotMatch\): the URL expired or its signature does not match/);
      expect(proxy.stats.injected.SignatureDoesNotMatch).toBe(1);
      expectNoSignature(r.stdout, r.stderr);
    } finally {
      await proxy.stop();
    }
  });

  it("a PUT URL signed with a checksum of an empty body (recent AWS SDKs' default) is refused with what to ask for instead", async () => {
    // The SDK's default signs x-amz-checksum-crc32 of the empty body into the URL. SeaweedFS and AWS
    // refuse the snapshot's bytes against it (BadDigest); moto checks no checksum, so the refusal
    // comes from the fault proxy in front of the server, whichever it is.
    const server = env.s3!;
    const signer = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    const proxy = await new FaultProxy(env.s3!.endpoint).start();
    proxy.rules = [{ match: (req) => req.method === "PUT", share: 1, fault: { kind: "s3-error", status: 400, code: "BadDigest" } }];
    try {
      const url = sigOf(await getSignedUrl(signer, new PutObjectCommand({ Bucket: otherBucket, Key: `${backup.key}.checksum` }), { expiresIn: 900 }));
      expect(new URL(url).searchParams.has("x-amz-checksum-crc32")).toBe(true);
      const r = await exportTo(url.replace(env.s3!.endpoint, proxy.url), sigOf(await presignPut(`${backup.key}.checksum.manifest.json`)));
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/was refused \(HTTP 400 BadDigest\): the URL carries a checksum \(x-amz-checksum-crc32\) of other bytes than the snapshot's/);
      expect(r.stderr).toContain('requestChecksumCalculation: "WHEN_REQUIRED"');
      expectNoSignature(r.stdout, r.stderr);
    } finally {
      await proxy.stop();
      signer.destroy();
    }
  });

  it("vrb presign prints GET URLs of the exported copy and its manifest", async () => {
    const r = await runVrb(["presign", `s3://${otherBucket}/${backup.key}`, "--expires", "15m", "--json"], cliEnv(env));
    expect(r.code, r.stderr).toBe(0);
    getUrls = JSON.parse(r.stdout) as typeof getUrls;
    expect(getUrls.sha256).toBe(backup.sha256);
    expect(new URL(getUrls.snapshotUrl).searchParams.get("X-Amz-Expires")).toBe("900");
    sigOf(getUrls.snapshotUrl);
    sigOf(getUrls.manifestUrl);
    expect(r.stderr).toBe("");
  });

  it("vrb verify by URL, without S3 credentials: with the manifest URL or --sha256; neither is refused (exit 2)", async () => {
    const withManifest = await runVrb(["verify", getUrls.snapshotUrl, "--manifest-url", getUrls.manifestUrl, "--json"], urlOnlyEnv());
    expect(withManifest.code, withManifest.stderr).toBe(0);
    expect(JSON.parse(withManifest.stdout)).toMatchObject({ ok: true, sha256: backup.sha256, bytes: backup.bytes });
    const withSha = await runVrb(["verify", getUrls.snapshotUrl, "--sha256", backup.sha256], urlOnlyEnv());
    expect(withSha.code, withSha.stderr).toBe(0);
    expect(withSha.stdout).toMatch(/^OK http:\/\/127\.0\.0\.1:\d+\/.*\?\[REDACTED\]/);
    const neither = await runVrb(["verify", getUrls.snapshotUrl], urlOnlyEnv());
    expect(neither.code, neither.stderr).toBe(2);
    expect(neither.stderr).toMatch(/needs the snapshot's expected SHA-256.*--sha256 HEX or --manifest-url URL/);
    expectNoSignature(withManifest.stdout, withManifest.stderr, withSha.stdout, withSha.stderr, neither.stderr);
  });

  it("vrb restore with a wrong --sha256 exits 3 and leaves the fresh node uninitialised", async () => {
    const keys = join(dir, "keys.json");
    writeFileSync(keys, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold }), { mode: 0o600 });
    const wrong = createHash("sha256").update("not this snapshot").digest("hex");
    const r = await runVrb(["restore", getUrls.snapshotUrl, "--sha256", wrong, "--nodes", node.apiAddr, "--unseal-keys-file", keys, "--json"], urlOnlyEnv());
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/does not match its manifest: sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}/);
    const probe = nodeClient(node);
    try {
      expect((await nodeHealth(probe)).role).toBe("uninitialized");
    } finally {
      await probe.close();
    }
    // With the manifest URL, a --sha256 that disagrees is refused before the download.
    const disagree = await runVrb(
      ["restore", getUrls.snapshotUrl, "--manifest-url", getUrls.manifestUrl, "--sha256", wrong, "--nodes", node.apiAddr, "--unseal-keys-file", keys],
      urlOnlyEnv(),
    );
    expect(disagree.code, disagree.stderr).toBe(3);
    expect(disagree.stderr).toMatch(/does not match the manifest's sha256/);
    expectNoSignature(r.stdout, r.stderr, disagree.stderr);
  });

  it("vrb restore from the pre-signed GET URLs rebuilds a fresh node: the canary is back", async () => {
    const keys = join(dir, "keys-root.json");
    writeFileSync(keys, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold, root_token: env.keys!.rootToken }), {
      mode: 0o600,
    });
    const r = await runVrb(
      [
        "restore",
        getUrls.snapshotUrl,
        "--manifest-url",
        getUrls.manifestUrl,
        "--nodes",
        node.apiAddr,
        "--unseal-keys-file",
        keys,
        "--canary",
        `secret/data/${canary.path}`,
        "--json",
      ],
      urlOnlyEnv(),
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; snapshot: { sha256: string; key: string }; canaries: { path: string; ok: boolean }[] };
    expect(report).toMatchObject({ ok: true, snapshot: { sha256: backup.sha256 } });
    expect(report.snapshot.key).toMatch(/\?\[REDACTED\]$/);
    expect(report.canaries).toEqual([{ path: `secret/data/${canary.path}`, ok: true }]);
    const restored = nodeClient(node, { token: env.keys!.rootToken });
    try {
      expect((await kvGet(restored, "secret", canary.path))?.value).toBe(canary.value);
    } finally {
      await restored.close();
    }
    expectNoSignature(r.stdout, r.stderr);
  });
});

describe("pre-signed URLs: export to an Azure Blob SAS URL (real Azurite)", () => {
  let az: LocalAzurite;
  let service: BlobServiceClient;
  const container = `handover-${id}`;
  /** A SAS URL of one blob in the container, for `permissions` (e.g. "cw" to write it, "r" to read it). */
  const sasUrl = (blob: string, permissions: string) => {
    const query = generateBlobSASQueryParameters(
      { containerName: container, blobName: blob, permissions: BlobSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 15 * 60_000) },
      new StorageSharedKeyCredential(az.accountName, az.accountKey),
    );
    return sigOf(`${service.getContainerClient(container).getBlobClient(blob).url}?${query.toString()}`);
  };

  beforeAll(async () => {
    az = await startAzurite(tempDir("presign-azurite"));
    service = BlobServiceClient.fromConnectionString(az.connectionString);
    await service.getContainerClient(container).create();
  });

  afterAll(async () => {
    if (az) await stopAzurite(az);
  });

  it("vrb export streams the snapshot and its manifest to SAS URLs; vrb verify reads them back by URL without credentials", async () => {
    const r = await exportTo(sasUrl(backup.key, "cw"), sasUrl(`${backup.key}.manifest.json`, "cw"), "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, key: backup.key, sha256: backup.sha256, bytes: backup.bytes });
    // Independent of the engine: the blob holds the snapshot's bytes.
    const blob = await service.getContainerClient(container).getBlobClient(backup.key).downloadToBuffer();
    expect(createHash("sha256").update(blob).digest("hex")).toBe(backup.sha256);
    const verify = await runVrb(["verify", sasUrl(backup.key, "r"), "--manifest-url", sasUrl(`${backup.key}.manifest.json`, "r"), "--json"], urlOnlyEnv());
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, sha256: backup.sha256, bytes: backup.bytes });
    expectNoSignature(r.stdout, r.stderr, verify.stdout, verify.stderr);
  });
});

describe("pre-signed URLs: export to Cloud Storage V4 signed URLs (real fake-gcs-server)", () => {
  let gcs: LocalGcsServer;
  let storage: Storage;
  const bucket = `handover-${id}`;
  /**
   * A V4 signed URL of one object, signed with a service account key made for the test (the
   * emulator does not check the signature; the SDK makes the URL exactly as for Cloud Storage).
   * PUT URLs are signed for the content type docs/export.md names for each object.
   */
  const signedUrl = async (object: string, action: "read" | "write") => {
    const contentType = object.endsWith(".manifest.json") ? "application/json" : "application/gzip";
    const [url] = await storage
      .bucket(bucket)
      .file(object)
      .getSignedUrl({ version: "v4", action, expires: Date.now() + 15 * 60_000, ...(action === "write" ? { contentType } : {}) });
    return sigOf(url);
  };

  beforeAll(async () => {
    gcs = await startGcsServer(tempDir("presign-gcs"));
    await createGcsBucket(gcs, bucket);
    const { privateKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    storage = new Storage({
      apiEndpoint: gcs.endpoint,
      projectId: "handover",
      credentials: { client_email: "handover@handover.iam.gserviceaccount.com", private_key: privateKey },
    });
  });

  afterAll(async () => {
    if (gcs) await stopGcsServer(gcs);
  });

  it("vrb export streams the snapshot and its manifest to signed PUT URLs with the content types they were signed for; vrb verify reads them back by signed GET URLs", async () => {
    const r = await exportTo(await signedUrl(backup.key, "write"), await signedUrl(`${backup.key}.manifest.json`, "write"), "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, key: backup.key, sha256: backup.sha256, bytes: backup.bytes });
    // Independent of the engine: the objects hold the snapshot's bytes, stored with the content type
    // each URL was signed for (Cloud Storage refuses a PUT whose Content-Type differs).
    const file = storage.bucket(bucket).file(backup.key);
    expect(
      createHash("sha256")
        .update(await readGcsObject(gcs, bucket, backup.key))
        .digest("hex"),
    ).toBe(backup.sha256);
    expect((await file.getMetadata())[0].contentType).toBe("application/gzip");
    expect((await storage.bucket(bucket).file(`${backup.key}.manifest.json`).getMetadata())[0].contentType).toBe("application/json");
    const verify = await runVrb(["verify", await signedUrl(backup.key, "read"), "--manifest-url", await signedUrl(`${backup.key}.manifest.json`, "read"), "--json"], urlOnlyEnv());
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, sha256: backup.sha256, bytes: backup.bytes });
    expectNoSignature(r.stdout, r.stderr, verify.stdout, verify.stderr);
  });
});
