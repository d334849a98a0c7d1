import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { OperationError } from "../engine/errors.js";
import { waitFor } from "../engine/wait.js";
import { freePort } from "../engine/throwaway/ports.js";
import { isAlive, startDetached, stopProcess, tailLog } from "../engine/throwaway/process.js";

/** Azurite's built-in development account: public, documented by Microsoft, accepted only by the emulator. */
export const AZURITE_ACCOUNT = "devstoreaccount1";
const AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface LocalAzurite {
  /** The blob endpoint, account included (Azurite takes the account from the first path segment). */
  endpoint: string;
  accountName: string;
  accountKey: string;
  /** What AZURE_STORAGE_CONNECTION_STRING is set to for this server. */
  connectionString: string;
  dataDir: string;
  logPath: string;
  pid?: number;
}

/** The blob emulator's entry point, from the `azurite` devDependency. */
function azuriteBlobMain(): string {
  let pkg: string;
  try {
    pkg = createRequire(import.meta.url).resolve("azurite/package.json");
  } catch {
    throw new OperationError("Azurite is not installed: it is a development dependency of vault-raft-backup (npm ci in the repository, or npm install --save-dev azurite@3.37.0)");
  }
  const main = join(dirname(pkg), "dist", "src", "blob", "main.js");
  if (!existsSync(main)) throw new OperationError(`Azurite's blob server is missing at ${main}: reinstall it (npm ci)`);
  return main;
}

/**
 * Starts Azurite's blob service on a free 127.0.0.1 port with its data under `dir`, and waits
 * until it answers a blob service request.
 */
export async function startAzurite(dir: string): Promise<LocalAzurite> {
  const dataDir = join(dir, "azurite");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logPath = join(dir, "azurite.log");
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const server: LocalAzurite = {
    endpoint,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_ACCOUNT_KEY,
    connectionString: azuriteConnectionString(endpoint),
    dataDir,
    logPath,
  };
  server.pid = startDetached(
    process.execPath,
    [
      azuriteBlobMain(),
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      String(port),
      "--location",
      dataDir,
      // The SDK speaks a newer service version than this Azurite knows; the calls we make exist in both.
      "--skipApiVersionCheck",
      // Azurite reports usage to Microsoft unless told not to: the tests make no outside connections.
      "--disableTelemetry",
      // Without it every request is logged: megabytes per backup.
      "--silent",
    ],
    logPath,
    process.env,
    dataDir,
  );
  const service = BlobServiceClient.fromConnectionString(server.connectionString, { retryOptions: { maxTries: 1 } });
  try {
    await waitFor(
      async () => {
        if (!azuriteRunning(server)) throw new OperationError(`Azurite exited during start-up; log ${logPath}:\n${tailLog(logPath)}`);
        try {
          await service.getProperties({ abortSignal: AbortSignal.timeout(2_000) });
          return true;
        } catch (err) {
          // Any HTTP answer means the blob API is up; only a refused or reset connection is "not yet".
          return (err as { statusCode?: number }).statusCode !== undefined ? true : undefined;
        }
      },
      { what: `Azurite on ${endpoint} (log: ${logPath})`, timeoutMs: 60_000, intervalMs: 250 },
    );
  } catch (err) {
    await stopProcess(server.pid, { marker: dataDir });
    throw err;
  }
  return server;
}

/** The connection string of an Azurite blob endpoint, in the form the SDK and the az CLI read. */
export function azuriteConnectionString(endpoint: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${endpoint};`;
}

export function azuriteRunning(server: LocalAzurite): boolean {
  // The data dir is on Azurite's command line and unique to this server (see isAlive).
  return isAlive(server.pid, { marker: server.dataDir });
}

export async function stopAzurite(server: LocalAzurite): Promise<void> {
  await stopProcess(server.pid, { graceMs: 10_000, marker: server.dataDir });
  server.pid = undefined;
}
