import { randomBytes } from "node:crypto";
import type { VaultClient } from "./client.js";
import { ensureKvV2, kvPut } from "./kv.js";

/**
 * Writes about `bytes` of incompressible data into KV v2 under `mount`, as base64 values of
 * `valueBytes` each (base64 grows them by 4/3: they must stay below raft's 1 MiB max entry size), so that snapshots of
 * a test or benchmark cluster have a real size. Returns the number of secrets written.
 */
export async function fillWithRandomData(
  client: VaultClient,
  opts: { bytes: number; mount?: string; valueBytes?: number; concurrency?: number; onProgress?: (written: number) => void },
): Promise<number> {
  const mount = opts.mount ?? "fill";
  const valueBytes = opts.valueBytes ?? 512 * 1024;
  const count = Math.max(1, Math.ceil(opts.bytes / valueBytes));
  await ensureKvV2(client, mount);
  let next = 0;
  let written = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await kvPut(client, mount, `blob-${i}`, { data: randomBytes(valueBytes).toString("base64") });
      written += valueBytes;
      opts.onProgress?.(written);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  return count;
}
