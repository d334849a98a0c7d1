import { ConfigError, IntegrityError, InterruptedError, OperationError, VrbError } from "../errors.js";
import type { ThrowawayTeardown } from "../drill/drill.js";
import { restoreReportOf } from "../restore/restore-run.js";
import { CLI_RESTORE_SETTINGS } from "../restore/setting-names.js";

/**
 * A restore into throwaway nodes (drill, recover) that failed or was stopped, said once the nodes
 * are gone. The restore's own message lists every node's state and commands to run on them; read
 * after the teardown, those describe servers that no longer exist, so they give way to what is
 * left (nothing) and what to do: with another snapshot after an integrity failure (the restore's
 * own advice), else `rerun`: the caller's own way to run it again (the CLI's: the same command).
 */
export function throwawayFailure(err: unknown, label: string, gone: ThrowawayTeardown, rerun = CLI_RESTORE_SETTINGS.rerun): unknown {
  if (!(err instanceof VrbError) || !err.message.includes(NODES_NOW)) return err;
  const what = err.message.slice(0, err.message.indexOf(NODES_NOW));
  const own = err.message.split("\nnext: ")[1]?.split("\n")[0];
  const next = err instanceof IntegrityError && own ? own : err instanceof InterruptedError ? `${rerun}.` : `fix the cause above and ${rerun}.`;
  const message = `${label}: ${what}\nthe throwaway cluster is gone: ${gone.stopped} node(s) stopped, ${gone.removed} removed; nothing outside it was changed.\n` + `next: ${next}`;
  const options = { stage: err.stage, cause: err };
  const out =
    err instanceof InterruptedError
      ? new InterruptedError(message, { ...options, signal: err.signal })
      : err instanceof ConfigError
        ? new ConfigError(message, { ...options, field: err.field })
        : err instanceof IntegrityError
          ? new IntegrityError(message, options)
          : new OperationError(message, options);
  const report = restoreReportOf(err);
  return report ? Object.assign(out, { report }) : out;
}

/** Where a restore failure's node states begin (engine/restore/failure.ts). */
const NODES_NOW = "\nnodes now:";
