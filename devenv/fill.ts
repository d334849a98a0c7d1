import { OperationError } from "../engine/errors.js";
import { formatBytes, silentProgress, type Progress } from "../engine/progress.js";
import { fillWithRandomData } from "../engine/vault/fill.js";
import { localVaultClient, type LocalEnvironment } from "./environment.js";

/** What `fillLocalEnvironment` wrote (sizes only: the values are random and never printed). */
export interface LocalFillReport {
  /** KV v2 mount the data went to. */
  mount: string;
  /** Bytes stored: base64 values, which is what a snapshot holds (the products do not compress it). */
  bytes: number;
  /** Random bytes behind them (3/4 of `bytes`). */
  randomBytes: number;
  secrets: number;
  ms: number;
  /** A path that exists after the fill, for the policy's `verify.canaries`. */
  canary: string;
}

/**
 * Fills the environment's cluster until a snapshot holds about `bytes` (`vrb local up --fill`),
 * through `fillWithRandomData`, the one fill the benchmarks use too. The values are base64 of random
 * bytes and both products store snapshots uncompressed, so 3/4 of `bytes` of random data makes a
 * snapshot of about `bytes` (measured: 20 MiB asked, 26.7 MiB of snapshot before this factor).
 * Progress as `fill: stored of total (rate)` lines, then one line with what was written.
 */
export async function fillLocalEnvironment(state: LocalEnvironment, bytes: number, opts: { mount?: string; progress?: Progress } = {}): Promise<LocalFillReport> {
  const progress = opts.progress ?? silentProgress;
  const mount = opts.mount ?? "fill";
  if (!state.keys) throw new OperationError(`the local environment in ${state.dir} is not initialised: nothing to fill`);
  const client = localVaultClient(state, { token: state.keys.rootToken });
  const started = Date.now();
  try {
    progress.info(`filling KV v2 mount '${mount}' until a snapshot holds about ${formatBytes(bytes)} (random values, never printed)`);
    const stored = (raw: number) => Math.round((raw * 4) / 3);
    let raw = 0;
    const secrets = await fillWithRandomData(client, {
      bytes: Math.ceil((bytes * 3) / 4),
      mount,
      onProgress: (written) => {
        raw = written;
        progress.bytes?.("fill", stored(written), Math.max(bytes, stored(written)));
      },
    });
    const ms = Date.now() - started;
    const rate = formatBytes(stored(raw) / Math.max(ms / 1000, 0.001)) + "/s";
    progress.info(
      `filled: ${formatBytes(stored(raw))} stored (base64 of ${formatBytes(raw)} random) in ${secrets} secrets under ${mount}/ in ${(ms / 1000).toFixed(1)}s (${rate})`,
    );
    return { mount, bytes: stored(raw), randomBytes: raw, secrets, ms, canary: `${mount}/data/blob-0` };
  } finally {
    await client.close();
  }
}
