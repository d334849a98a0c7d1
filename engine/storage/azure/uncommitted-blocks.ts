import type { BlockBlobClient, ContainerClient } from "@azure/storage-blob";
import { sleep } from "../../wait.js";
import type { IncompleteUpload, OwnUploads } from "../object-store.js";
import { isTombstone, parseBlockId, TOMBSTONE } from "./block-ids.js";
import { azureErrorInfo, describeAzureError, isContainerNotFound, isNotFound, storeFailure } from "./errors.js";
import { timeoutSignal } from "../../timeout-signal.js";

// Unfinished uploads on Azure are uncommitted blocks: how they are found and how an abort empties
// them (Azure has no call that discards them).

/** One request of an abort (a look or a tombstone) may take this long. */
const CALL_TIMEOUT_MS = 10_000;
/** Tombstones staged at once by an abort. */
const TOMBSTONE_BATCH = 16;

/**
 * Blobs under `prefix` that have uncommitted blocks and were never committed, one entry per
 * upload (the id in our block ids; "other" for blocks another tool staged); aborted uploads
 * (only tombstones left, block-ids.ts) are not listed. Uncommitted blocks of a blob that also has
 * a committed version are not looked for: that takes a request per blob, and snapshot keys are
 * never uploaded twice; the next commit of that blob drops them.
 */
export async function listUncommittedUploads(client: ContainerClient, url: string, prefix: string, signal?: AbortSignal): Promise<IncompleteUpload[]> {
  try {
    const committed = new Set<string>();
    for await (const b of client.listBlobsFlat({ prefix, abortSignal: signal })) committed.add(b.name);
    const out: IncompleteUpload[] = [];
    for await (const b of client.listBlobsFlat({ prefix, includeUncommitedBlobs: true, abortSignal: signal })) {
      if (committed.has(b.name)) continue;
      const started = b.properties.createdOn ?? b.properties.lastModified;
      for (const id of liveUploads(await uncommittedBlocks(client.getBlockBlobClient(b.name), signal)).keys()) out.push({ key: b.name, id, started });
    }
    return out;
  } catch (err) {
    throw storeFailure("listing the unfinished uploads under", url, err);
  }
}

/**
 * Azure has no call that discards uncommitted blocks, and a commit would make a blob appear (one
 * that a container's default immutability policy could then keep for its whole retention) and
 * drop every other upload's blocks of the key. So each block of the uploads to abort is staged
 * again as a 1-byte tombstone under its own id: the data is gone at once, nothing becomes
 * visible, other uploads of the key are untouched, and Azure discards the tombstones 7 days later.
 * Looks again until two looks in a row find nothing left (a block that was in flight lands late).
 */
export async function abortUncommittedUploads(
  blob: BlockBlobClient,
  url: string,
  opts: { own?: OwnUploads; deadlineMs?: number } = {},
): Promise<{ aborted: string[]; left: string[]; error?: string }> {
  const mine = (id: string) => !opts.own || opts.own.unknown || opts.own.ids.includes(id);
  const deadline = Date.now() + (opts.deadlineMs ?? 60_000);
  const aborted = new Set<string>();
  let pending: string[] = [];
  let cleanLooks = 0;
  let lastError: string | undefined;
  while (Date.now() < deadline) {
    try {
      const live = [...liveUploads(await uncommittedBlocks(blob, timeoutSignal(CALL_TIMEOUT_MS)))].filter(([id]) => mine(id));
      pending = live.map(([id]) => id);
      if (!live.length) {
        if (++cleanLooks >= 2) return { aborted: [...aborted], left: [] };
        await sleep(500);
        continue;
      }
      cleanLooks = 0;
      const blocks = live.flatMap(([, names]) => names);
      await inBatches(blocks, TOMBSTONE_BATCH, (name) => blob.stageBlock(name, TOMBSTONE, TOMBSTONE.length, { abortSignal: timeoutSignal(CALL_TIMEOUT_MS) }));
      for (const id of pending) aborted.add(id);
    } catch (err) {
      if (isContainerNotFound(err)) return { aborted: [...aborted], left: [] };
      lastError = describeAzureError(err);
      const { status, retryable } = azureErrorInfo(err);
      if (status !== undefined && !retryable) break;
      cleanLooks = 0;
      await sleep(1_000);
    }
  }
  return {
    aborted: [...aborted],
    left: pending.length ? pending : lastError ? ["(unknown: the uncommitted blocks could not be listed)"] : [],
    error: lastError ?? (pending.length ? `uncommitted blocks of ${url} were still being staged when the deadline passed` : undefined),
  };
}

/** The uncommitted blocks of a blob ([] when it has none, or does not exist). */
async function uncommittedBlocks(blob: BlockBlobClient, signal?: AbortSignal): Promise<{ name: string; size: number }[]> {
  try {
    return (await blob.getBlockList("uncommitted", { abortSignal: signal })).uncommittedBlocks ?? [];
  } catch (err) {
    if (isNotFound(err) && !isContainerNotFound(err)) return [];
    throw err;
  }
}

/** The uploads that still hold data, by upload id ("other" for blocks another tool staged), with their blocks that are not tombstones. */
function liveUploads(blocks: { name: string; size: number }[]): Map<string, string[]> {
  const live = new Map<string, string[]>();
  for (const b of blocks) {
    if (isTombstone(b)) continue;
    const id = parseBlockId(b.name)?.uploadId ?? "other";
    const names = live.get(id) ?? [];
    names.push(b.name);
    live.set(id, names);
  }
  return live;
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<unknown>): Promise<void> {
  for (let at = 0; at < items.length; at += size) await Promise.all(items.slice(at, at + size).map(run));
}
