import type { GcsDestination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";
import { createGcsClient, gcsEndpoint, serviceAccountKey } from "./client.js";
import { GcsStore } from "./store.js";

/** Opens the Cloud Storage store of a `type: gcs` destination (credentials: docs/storage-gcs.md). */
export function openGcsStore(destination: GcsDestination, name: string): ObjectStore {
  const endpoint = gcsEndpoint(destination.endpoint);
  const key = serviceAccountKey();
  return new GcsStore({
    storage: createGcsClient(endpoint, { projectId: destination.projectId }),
    name,
    bucket: destination.bucket,
    prefix: destination.prefix,
    kmsKeyName: destination.kmsKeyName,
    emulator: endpoint.emulator,
    signingKey: key !== undefined,
  });
}
