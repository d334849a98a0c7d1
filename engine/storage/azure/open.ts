import { OperationError } from "../../errors.js";
import type { AzureDestination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";

// Placeholder until the azure store lands.
export function openAzureStore(_destination: AzureDestination, name: string): ObjectStore {
  throw new OperationError(`destination '${name}': the azure store is not built yet`);
}
