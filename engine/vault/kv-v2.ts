import { VaultHttpError, type VaultClient } from "./client.js";
import { waitFor } from "../wait.js";

/**
 * Mounts a KV v2 engine at `mount` if it is not there, and waits until it serves requests
 * (a new KV v2 mount answers 400 "upgrading" for a moment after it is created).
 */
export async function ensureKvV2(client: VaultClient, mount: string, timeoutMs = 30_000): Promise<void> {
  try {
    await client.post(`sys/mounts/${mount}`, { type: "kv", options: { version: "2" } });
  } catch (err) {
    if (!(err instanceof VaultHttpError && err.errors.some((e) => /already in use/.test(e)))) throw err;
  }
  await waitFor(
    async () => {
      await client.get(`${mount}/config`);
      return true;
    },
    { what: `KV v2 mount '${mount}' to finish its upgrade`, timeoutMs, intervalMs: 200 },
  );
}

export async function kvPut(client: VaultClient, mount: string, path: string, data: Record<string, unknown>): Promise<number> {
  const res = await client.post<{ data: { version: number } }>(`${mount}/data/${path}`, { data });
  return res.body.data.version;
}

export async function kvGet(client: VaultClient, mount: string, path: string, version?: number): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await client.get<{ data: { data: Record<string, unknown> | null } }>(`${mount}/data/${path}`, {
      query: version ? { version } : undefined,
    });
    return res.body.data.data ?? undefined;
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 404) return undefined;
    throw err;
  }
}
