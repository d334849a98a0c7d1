import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createArchiveInspector, type ArchiveReport } from "../../engine/snapshot/archive.js";

/**
 * The engine's archive check of a whole snapshot held in memory: gunzip + untar, every entry
 * against SHA256SUMS, meta.json's raft index. Rejects with the check's reason.
 */
export async function inspectSnapshot(bytes: Buffer): Promise<ArchiveReport> {
  const { input, result } = createArchiveInspector();
  // The check's verdict is `result`; the pipeline's own error is the same failure seen from the writer.
  await pipeline(Readable.from([bytes]), input).catch(() => undefined);
  return result;
}
