import { OperationError } from "../../errors.js";
import type { FileDestination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";

// Placeholder until the file store lands.
export function openFileStore(_destination: FileDestination, name: string): ObjectStore {
  throw new OperationError(`destination '${name}': the file store is not built yet`);
}
