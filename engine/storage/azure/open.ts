import type { AzureDestination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";
import { connectAzure } from "./connect.js";
import { AzureBlobStore } from "./store.js";

/** Opens an Azure Blob destination (registry.ts): credentials from the environment, never the policy. */
export function openAzureStore(destination: AzureDestination, name: string): ObjectStore {
  return new AzureBlobStore(connectAzure(destination), {
    name,
    accountName: destination.accountName,
    container: destination.container,
    prefix: destination.prefix,
    encryptionScope: destination.encryptionScope,
  });
}
