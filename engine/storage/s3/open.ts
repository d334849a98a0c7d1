import { OperationError } from "../../errors.js";
import type { S3Destination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";

// Placeholder until the s3 store lands.
export function openS3Store(_destination: S3Destination, name: string): ObjectStore {
  throw new OperationError(`destination '${name}': the s3 store is not built yet`);
}
