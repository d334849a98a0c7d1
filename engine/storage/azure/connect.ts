import { AnonymousCredential, BlobServiceClient, StorageSharedKeyCredential, type StoragePipelineOptions } from "@azure/storage-blob";
import { ConfigError } from "../../errors.js";
import { azureIdentity } from "../../lazy-modules.js";
import { registerSecret } from "../../redact.js";
import type { AzureDestination } from "../destination.js";

/** How the store signs its requests: what decides whether it can sign SAS URLs, and how. */
export type AzureCredentialKind = "connection-string" | "account-key" | "identity" | "sas";

export interface AzureConnection {
  service: BlobServiceClient;
  /** The blob endpoint, account included for path-style endpoints (Azurite), without a SAS. */
  endpoint: string;
  kind: AzureCredentialKind;
  /** An emulator (Azurite): the account is the endpoint's first path segment, which Azure's own endpoints never have. */
  emulator: boolean;
  /** Set when requests are signed with the account key: SAS URLs are then signed with it too. */
  sharedKey?: StorageSharedKeyCredential;
}

// The SDK's default waits 4 s, 12 s, 28 s between its 4 tries: a store that is down would hold a
// status write for most of a minute. Block uploads get rounds of their own (retryAzureCall).
const PIPELINE: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 10_000 },
};

/**
 * The blob service client of a destination, credentials taken the way Azure's own tools take them:
 * AZURE_STORAGE_CONNECTION_STRING when set, else AZURE_STORAGE_KEY (the account key), else the
 * identity chain (DefaultAzureCredential: workload identity, managed identity, az login). Every key,
 * connection string and SAS is registered for redaction before the first request.
 */
export function connectAzure(destination: AzureDestination, env: NodeJS.ProcessEnv = process.env): AzureConnection {
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (connectionString) return fromConnectionString(destination, connectionString);
  const endpoint = stripSlash(destination.endpoint ?? `https://${destination.accountName}.blob.core.windows.net`);
  const accountKey = env.AZURE_STORAGE_KEY?.trim();
  if (accountKey) {
    registerSecret(accountKey);
    const sharedKey = new StorageSharedKeyCredential(destination.accountName, accountKey);
    return { service: new BlobServiceClient(endpoint, sharedKey, PIPELINE), endpoint, kind: "account-key", sharedKey, emulator: isEmulator(endpoint, destination.accountName) };
  }
  const identity = new (azureIdentity().DefaultAzureCredential)();
  return { service: new BlobServiceClient(endpoint, identity, PIPELINE), endpoint, kind: "identity", emulator: isEmulator(endpoint, destination.accountName) };
}

function fromConnectionString(destination: AzureDestination, connectionString: string): AzureConnection {
  registerSecret(connectionString);
  const parts = parseConnectionString(connectionString);
  registerSecret(parts.AccountKey);
  registerSecret(parts.SharedAccessSignature);
  let parsed: BlobServiceClient;
  try {
    parsed = BlobServiceClient.fromConnectionString(connectionString, PIPELINE);
  } catch (err) {
    // The SDK's message may quote the string it could not parse: say only what is wrong.
    throw new ConfigError(
      `AZURE_STORAGE_CONNECTION_STRING is not a storage connection string the Azure SDK accepts (${err instanceof Error ? err.message.replace(connectionString, "[REDACTED]") : "unreadable"}): ` +
        "copy it from the portal (Access keys) or `az storage account show-connection-string`",
      { field: "AZURE_STORAGE_CONNECTION_STRING", cause: err },
    );
  }
  if (parsed.accountName && parsed.accountName !== destination.accountName) {
    throw new ConfigError(
      `AZURE_STORAGE_CONNECTION_STRING is for storage account '${parsed.accountName}' but destination.accountName is '${destination.accountName}': ` +
        "set the account the connection string belongs to, or the connection string of that account",
      { field: "destination.accountName" },
    );
  }
  const credential = parsed.credential;
  const sharedKey = credential instanceof StorageSharedKeyCredential ? credential : undefined;
  const sas = new URL(parsed.url).search;
  const endpoint = stripSlash(destination.endpoint ?? withoutQuery(parsed.url));
  const kind: AzureCredentialKind = sharedKey ? "connection-string" : "sas";
  const emulator = isEmulator(endpoint, destination.accountName);
  if (!destination.endpoint) return { service: parsed, endpoint, kind, sharedKey, emulator };
  // The destination's endpoint wins; the connection string still gives the credential (a SAS
  // travels in the URL's query).
  const service = new BlobServiceClient(`${endpoint}${sas}`, sharedKey ?? (credential instanceof AnonymousCredential ? credential : new AnonymousCredential()), PIPELINE);
  return { service, endpoint, kind, sharedKey, emulator };
}

/** Path-style endpoints (http://127.0.0.1:10000/devstoreaccount1) are Azurite's; Azure names the account in the host. */
export function isEmulator(endpoint: string, accountName: string): boolean {
  return new URL(endpoint).pathname.split("/")[1] === accountName;
}

/** Key=value pairs separated by ';' (values may contain '=', e.g. base64 keys). */
export function parseConnectionString(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function withoutQuery(url: string): string {
  const u = new URL(url);
  u.search = "";
  return u.toString();
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, "");
}
