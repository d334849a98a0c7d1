import { VaultHttpError, type VaultClient } from "../vault/client.js";

export interface MountInventory {
  mount: string;
  kvVersion: 1 | 2;
  secrets: number;
}

interface MountInfo {
  type: string;
  options?: { version?: string } | null;
}

async function list(client: VaultClient, path: string): Promise<string[]> {
  try {
    const r = await client.get<{ data?: { keys?: string[] } }>(path, { query: { list: true } });
    return r.body.data?.keys ?? [];
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 404) return [];
    throw err;
  }
}

/**
 * Every secret path of one KV mount (v2 walks metadata/, v1 the mount itself), relative to the
 * mount; `under` (a folder ending in "/") limits the walk to that subtree.
 */
export async function listKvSecrets(client: VaultClient, mount: string, kvVersion: 1 | 2, concurrency = 16, under = ""): Promise<string[]> {
  const base = mount.replace(/\/+$/, "");
  const listRoot = kvVersion === 2 ? `${base}/metadata` : base;
  const found: string[] = [];
  const folders = [under];
  while (folders.length) {
    const batch = folders.splice(0, concurrency);
    const results = await Promise.all(batch.map(async (f) => ({ f, keys: await list(client, `${listRoot}/${f}`) })));
    for (const { f, keys } of results) {
      for (const k of keys) (k.endsWith("/") ? folders : found).push(`${f}${k}`);
    }
  }
  return found.sort();
}

/** Secret counts per KV mount: what a drill compares to know the restore brought everything back. */
export async function kvInventory(client: VaultClient): Promise<MountInventory[]> {
  const mounts = (await client.get<{ data?: Record<string, MountInfo> } & Record<string, unknown>>("sys/mounts")).body;
  const table = (mounts.data ?? mounts) as Record<string, MountInfo>;
  const out: MountInventory[] = [];
  for (const [path, info] of Object.entries(table)) {
    if (!info || typeof info !== "object" || info.type !== "kv") continue;
    const kvVersion = info.options?.version === "2" ? 2 : 1;
    out.push({ mount: path.replace(/\/+$/, ""), kvVersion, secrets: (await listKvSecrets(client, path, kvVersion)).length });
  }
  return out.sort((a, b) => a.mount.localeCompare(b.mount));
}
