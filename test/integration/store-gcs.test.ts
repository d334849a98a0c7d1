import { afterAll, beforeAll } from "vitest";
import { createGcsBucket, readGcsObject, startGcsServer, stopGcsServer, type LocalGcsServer } from "../../devenv/gcs-server.js";
import { createGcsClient, gcsEndpoint } from "../../engine/storage/gcs/client.js";
import { tempDir } from "../support/env.js";
import { damaged, storeCliSuite } from "../support/store-cli-suite.js";

// Issue 21: the shared CLI suite (test/support/store-cli-suite.ts) with a `type: gcs` destination
// against a real fake-gcs-server. The CLI runs with no S3 variable set, so nothing can silently go
// to the S3 server.
let gcs: LocalGcsServer;

beforeAll(async () => {
  gcs = await startGcsServer(tempDir("gcs-cli"));
});

afterAll(async () => {
  if (gcs) await stopGcsServer(gcs);
});

storeCliSuite({
  title: "vrb on a Cloud Storage destination (real %s + fake-gcs-server)",
  short: "gcs",
  canary: "gcs-canary",
  dirName: "store-gcs",
  place: "bucket",
  object: "an object",
  store: (run) => {
    const bucket = `vrb-${run}`;
    /** The test's own view of the bucket, on the same server. */
    const objects = () => createGcsClient(gcsEndpoint(gcs.endpoint)).bucket(bucket);
    return {
      destination: () => `{ type: gcs, bucket: ${bucket}, prefix: vault/, endpoint: "${gcs.endpoint}" }`,
      env: () => ({}),
      secrets: () => [],
      urlOf: (key) => `gs://${bucket}/${key}`,
      create: () => createGcsBucket(gcs, bucket, { versioning: true }),
      exists: async (key) => (await objects().file(key).exists())[0],
      pid: () => gcs.pid!,
      damage: async (key) => {
        const body = await readGcsObject(gcs, bucket, key);
        await objects().file(key).save(damaged(body), { resumable: false, validation: false });
      },
    };
  },
});
