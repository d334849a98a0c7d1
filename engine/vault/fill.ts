import { randomBytes } from "node:crypto";
import { ConfigError } from "../errors.js";
import type { VaultClient } from "./client.js";
import { ensureKvV2, kvPut } from "./kv-v2.js";

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

const MiB = 1024 * 1024;

/** The forms `parseByteSize` accepts, for error messages and help texts. */
export const BYTE_SIZE_FORMS = "a number with a unit B, KiB, MiB or GiB (KB, MB, GB, K, M, G mean the same; no unit: MiB), e.g. 500KiB, 250MiB, 1GiB";

/**
 * "250MiB", "1GiB", "500KiB", "512" (MiB): bytes. A value that is not such a size, or is zero, is a
 * ConfigError naming `flag` and the accepted forms (exit 2 before anything starts).
 */
export function parseByteSize(text: string, flag = "--size"): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?$/i.exec(text.trim());
  const unit = (m?.[2] ?? "MiB").toUpperCase().replace("I", "").replace(/B$/, "");
  const mult: Record<string, number> = { "": 1, K: 1024, M: MiB, G: 1024 * MiB };
  const bytes = m ? Math.round(Number(m[1]) * mult[unit]!) : NaN;
  if (!(bytes > 0)) throw new ConfigError(`${flag} '${text}' is not a size${m ? " above zero" : ""}; use ${BYTE_SIZE_FORMS}`, { field: flag });
  return bytes;
}
