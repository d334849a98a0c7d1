import type { S3Destination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";
import { createS3Client } from "./client.js";
import { S3Store } from "./store.js";

/** The S3 store of a destination: a client from the SDK's own credential chain, the destination's SSE-KMS key on every write. */
export function openS3Store(destination: S3Destination, name: string): ObjectStore {
  return new S3Store({
    client: createS3Client(destination),
    bucket: destination.bucket,
    prefix: destination.prefix,
    kmsKeyId: destination.kmsKeyId,
    name,
  });
}
