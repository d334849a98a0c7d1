import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { OperationError } from "../engine/errors.js";
import { waitFor } from "../engine/wait.js";
import { freePort } from "../engine/throwaway/ports.js";
import { isAlive, startDetached, stopProcess, tailLog } from "../engine/throwaway/process.js";
import { fakeGcsServerPath } from "../engine/throwaway/binaries.js";

/** A local fake-gcs-server (Cloud Storage API emulator) for the tests and benchmarks. */
export interface LocalGcsServer {
  /** The API root, e.g. http://127.0.0.1:41234: a destination's `endpoint`, or STORAGE_EMULATOR_HOST. */
  endpoint: string;
  dataDir: string;
  logPath: string;
  pid?: number;
}

/**
 * Starts fake-gcs-server on a free 127.0.0.1 port (plain http) and waits until it answers. Objects
 * live in its memory: its filesystem backend refuses versioned buckets ("does not support
 * versioning yet"), and a destination bucket without versioning is not what docs/storage-gcs.md
 * asks for. `dir` holds its log.
 */
export async function startGcsServer(dir: string): Promise<LocalGcsServer> {
  const dataDir = join(dir, "gcs");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logPath = join(dir, "gcs.log");
  const port = await freePort();
  const server: LocalGcsServer = { endpoint: `http://127.0.0.1:${port}`, dataDir, logPath };
  server.pid = startDetached(
    fakeGcsServerPath(),
    // -public-host makes the upload session and download URLs it hands out point back at this
    // port; -filesystem-root (unused by the memory backend) marks the process as ours (isAlive).
    ["-scheme", "http", "-host", "127.0.0.1", "-port", String(port), "-backend", "memory", "-filesystem-root", dataDir, "-public-host", `127.0.0.1:${port}`, "-log-level", "warn"],
    logPath,
    process.env,
    dataDir,
  );
  try {
    await waitFor(
      async () => {
        if (!gcsServerRunning(server)) throw new OperationError(`fake-gcs-server exited during start-up; log ${logPath}:\n${tailLog(logPath)}`);
        try {
          const res = await fetch(`${server.endpoint}/storage/v1/b`, { signal: AbortSignal.timeout(2_000) });
          await res.body?.cancel();
          return res.ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      { what: `fake-gcs-server on ${server.endpoint} (log: ${logPath})`, timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (err) {
    await stopGcsServer(server);
    throw err;
  }
  return server;
}

/** What only our server's command line contains (see isAlive). */
function processMarker(server: LocalGcsServer): string {
  return `-filesystem-root ${server.dataDir}`;
}

export function gcsServerRunning(server: LocalGcsServer): boolean {
  return isAlive(server.pid, { marker: processMarker(server) });
}

export async function stopGcsServer(server: LocalGcsServer): Promise<void> {
  await stopProcess(server.pid, { graceMs: 5_000, marker: processMarker(server) });
  server.pid = undefined;
}

/** Creates a bucket on the local server, with object versioning (as docs/storage-gcs.md asks for production). */
export async function createGcsBucket(server: LocalGcsServer, bucket: string, opts: { versioning?: boolean } = {}): Promise<void> {
  const res = await fetch(`${server.endpoint}/storage/v1/b?project=vrb-emulator`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: bucket, versioning: { enabled: opts.versioning ?? true } }),
  });
  const text = await res.text();
  if (!res.ok) throw new OperationError(`creating the bucket gs://${bucket} on ${server.endpoint} failed: HTTP ${res.status} ${text.slice(0, 200)}`);
}

/**
 * An object's live bytes from the local server, by the JSON API's media URL: a view of the bucket
 * that shares no code with the store (and the SDK's download() prints Node's listener warning on a
 * body of 16 KiB or more).
 */
export async function readGcsObject(server: LocalGcsServer, bucket: string, key: string): Promise<Buffer> {
  const res = await fetch(`${server.endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(key)}?alt=media`);
  if (!res.ok) throw new OperationError(`reading gs://${bucket}/${key} from ${server.endpoint} failed: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return Buffer.from(await res.arrayBuffer());
}
