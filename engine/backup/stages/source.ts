import type { Readable } from "node:stream";
import { OperationError } from "../../errors.js";
import { VaultPermissionError, type VaultClient } from "../../vault/client.js";
import type { PipelineSource, StagePipeline } from "../pipeline.js";
import type { SnapshotStore } from "../../catalogue/snapshot-store.js";

/**
 * Opens `GET sys/storage/raft/snapshot` on the active node. No body timeout: a multi-GiB
 * snapshot takes as long as it takes; the source below watches it for stalls.
 * A standby's 307 is followed by VaultClient.open (never https -> http); a 200 from a standby
 * (OpenBao 2.7 answers some that way) is fine too.
 */
export async function openSnapshotStream(leader: VaultClient, opts: { signal?: AbortSignal; headersTimeoutMs?: number } = {}): Promise<Readable> {
  const res = await leader.open("GET", "sys/storage/raft/snapshot", {
    bodyTimeout: 0,
    headersTimeout: opts.headersTimeoutMs ?? 120_000,
    signal: opts.signal,
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text().catch(() => "");
    let detail = text.slice(0, 300);
    try {
      const errors = (JSON.parse(text) as { errors?: string[] }).errors;
      if (errors?.length) detail = errors.join("; ");
    } catch {
      // not JSON: keep the text
    }
    if (res.statusCode === 403) throw new VaultPermissionError(leader.addr, "GET", "sys/storage/raft/snapshot", detail ? [detail] : [], { stage: "stream" });
    throw new OperationError(`GET ${leader.addr}/v1/sys/storage/raft/snapshot answered ${res.statusCode}${detail ? `: ${detail}` : ""}`, {
      stage: "stream",
    });
  }
  return res.body;
}

/** Which side held the pass up when it stalled, when it is not the source itself. */
export type StallBlame = () => { stage: string; who: string } | undefined;

/**
 * The snapshot stream of the active node as a pipeline source (stage "stream"), with its stall
 * watchdog: when neither Vault nor any stage moved a byte for `stallTimeoutMs`, the pass fails
 * naming the side that held it up (`blame`, e.g. an upload waiting for S3) or else the stream.
 */
export async function openVaultSnapshotSource(
  pipeline: StagePipeline,
  leader: VaultClient,
  opts: { leaderAddr: string; stallTimeoutMs: number; blame?: StallBlame },
): Promise<PipelineSource> {
  const stream = await pipeline.race(openSnapshotStream(leader, { signal: pipeline.signal }));
  pipeline.watch(opts.stallTimeoutMs, (idle) => {
    const other = opts.blame?.();
    const who = other?.who ?? `the snapshot stream from ${opts.leaderAddr} sent no data`;
    return new OperationError(`${who} for ${Math.round(idle / 1000)}s; aborted (stall timeout)`, { stage: other?.stage ?? "stream" });
  });
  return { name: "stream", stream };
}

/**
 * A stored snapshot's download as a pipeline source (stage "verify"). The watchdog runs from
 * before the request: an S3 server that stops answering or sending fails the pass naming the stall.
 * Failed requests are retried and a cut body is resumed with a ranged GET (SnapshotStore.openSnapshot).
 */
export async function openStoredSnapshotSource(
  pipeline: StagePipeline,
  store: SnapshotStore,
  key: string,
  opts: { stallTimeoutMs: number; where: string; onResume?: (message: string) => void },
): Promise<PipelineSource> {
  const { where } = opts;
  pipeline.watch(opts.stallTimeoutMs, (idle) => {
    return new OperationError(`S3 sent no data of ${where} for ${Math.round(idle / 1000)}s; verify aborted (stall timeout)`, { stage: "verify" });
  });
  const { body } = await pipeline.race(store.openSnapshot(key, { signal: pipeline.signal, onResume: opts.onResume }));
  return { name: "verify", stream: body };
}
