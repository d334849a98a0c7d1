import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll } from "vitest";
import { startAzurite, stopAzurite, type LocalAzurite } from "../../devenv/azurite.js";
import { tempDir } from "../support/env.js";
import { damaged, storeCliSuite } from "../support/store-cli-suite.js";

// Issue 21: the shared CLI suite (test/support/store-cli-suite.ts) with a `type: azure` destination
// against a real Azurite. The CLI runs with Azure credentials only: no S3 variable is set, so nothing
// can silently go to the S3 server.
let az: LocalAzurite;
let service: BlobServiceClient;

beforeAll(async () => {
  az = await startAzurite(tempDir("azurite-cli"));
  service = BlobServiceClient.fromConnectionString(az.connectionString);
});

afterAll(async () => {
  if (az) await stopAzurite(az);
});

storeCliSuite({
  title: "vrb on an Azure Blob destination (real %s + Azurite)",
  short: "az",
  canary: "azure-canary",
  dirName: "store-azure",
  place: "container",
  object: "a blob",
  store: (run) => {
    const container = `vrb-${run}`;
    const blobs = () => service.getContainerClient(container);
    return {
      destination: () => `{ type: azure, accountName: ${az.accountName}, container: ${container}, prefix: vault/, endpoint: "${az.endpoint}" }`,
      env: () => ({ AZURE_STORAGE_CONNECTION_STRING: az.connectionString }),
      secrets: () => [az.accountKey, az.connectionString],
      urlOf: (key) => `azure://${az.accountName}/${container}/${key}`,
      create: async () => {
        await blobs().create();
      },
      exists: (key) => blobs().getBlobClient(key).exists(),
      pid: () => az.pid!,
      damage: async (key) => {
        const blob = blobs().getBlockBlobClient(key);
        const body = damaged(await blob.downloadToBuffer());
        await blob.upload(body, body.length);
      },
    };
  },
});
