import { OperationError } from "../../errors.js";
import type { GcsDestination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";

// Placeholder until the gcs store lands.
export function openGcsStore(_destination: GcsDestination, name: string): ObjectStore {
  throw new OperationError(`destination '${name}': the gcs store is not built yet`);
}
