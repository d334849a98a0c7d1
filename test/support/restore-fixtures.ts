import { expect } from "vitest";
import { validatePolicy, type BackupPolicy, type VaultClient } from "../../engine/index.js";
import { type LocalEnvironment } from "../../devenv/environment.js";
import { kvGet, kvPut } from "../../engine/vault/kv-v2.js";

/** path -> the value of each version, in order, as written to the source cluster. */
export type WrittenSecrets = Map<string, string[]>;

export async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/** Writes `versions` versions of each path into a KV v2 mount; every value is unique to this run. */
export async function seedVersionedSecrets(client: VaultClient, mount: string, paths: string[], versions: number, run: string): Promise<WrittenSecrets> {
  const written: WrittenSecrets = new Map();
  for (let v = 1; v <= versions; v++) {
    await inBatches(paths, 50, async (path) => {
      const value = `${run}-${path}-v${v}`;
      await kvPut(client, mount, path, { value });
      written.set(path, [...(written.get(path) ?? []), value]);
    });
  }
  return written;
}

/** Every version of every written secret reads back equal through `client`. */
export async function expectAllSecretsEqual(client: VaultClient, mount: string, written: WrittenSecrets): Promise<void> {
  const wrong: string[] = [];
  await inBatches([...written.entries()], 50, async ([path, values]) => {
    for (const [i, value] of values.entries()) {
      const got = await kvGet(client, mount, path, i + 1);
      if (got?.value !== value) wrong.push(`${path} v${i + 1}`);
    }
  });
  expect(wrong).toEqual([]);
}

/** A backup policy that stores under `prefix` in the shared environment's bucket. */
export function policyInSharedBucket(shared: LocalEnvironment, prefix: string, cluster: string, nodes: string[]): BackupPolicy {
  return validatePolicy({
    cluster: { name: cluster, nodes },
    destination: { bucket: shared.bucket!, prefix, endpoint: shared.s3!.endpoint, region: shared.s3!.region, forcePathStyle: true },
  });
}
