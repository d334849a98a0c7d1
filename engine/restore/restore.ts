import { rmSync } from "node:fs";
import { ConfigError } from "../errors.js";
import { registerSecret } from "../redact.js";
import { restoreFailure } from "./failure.js";
import { inPlace } from "./in-place.js";
import { rebuild } from "./rebuild.js";
import { RestoreRun, type RestoreOptions, type RestoreReport } from "./restore-run.js";
import { formatMs } from "./steps.js";
import { revokeGeneratedToken } from "./token.js";

export type { RestoreStep } from "./steps.js";
export { restoreReportOf } from "./restore-run.js";
export type { NotVerified, RestoreFailure, RestoreMode, RestoreNodeReport, RestoreOptions, RestoreReport, TokenSource } from "./restore-run.js";

/**
 * Staged restore. `rebuild`: empty, uninitialised nodes become the snapshot's cluster, node 1
 * first, then one node at a time (engine/restore/rebuild.ts). `in-place`: a live cluster rolls
 * back to the snapshot (engine/restore/in-place.ts). Shamir and auto-unseal seals alike. Nothing
 * is changed before the snapshot is downloaded and verified and the targets and seals checked;
 * the run ends with proof (full with a token, token-free checks without one, the rest listed as
 * not verified) or with an error that says which node is in which state and what to run next
 * (`restoreReportOf(err)` has the steps).
 */
export async function stagedRestore(opts: RestoreOptions): Promise<RestoreReport> {
  validateOptions(opts);
  opts.keys?.keys.forEach(registerSecret);
  registerSecret(opts.keys?.rootToken);
  registerSecret(opts.token);
  const run = new RestoreRun(opts);
  try {
    if (opts.mode === "rebuild") await rebuild(run);
    else await inPlace(run);
    await revokeGeneratedToken(run);
    const report = run.report(true);
    const unverified = report.notVerified.length ? `; not verified without a token: ${report.notVerified.map((n) => n.check).join(", ")}` : "";
    run.progress.info(`restore finished in ${formatMs(report.durationMs)}: ${report.nodes.length} node(s), raft index ${report.raftIndex ?? "?"}${unverified}`);
    return report;
  } catch (err) {
    await revokeGeneratedToken(run).catch(() => undefined);
    throw await restoreFailure(run, err);
  } finally {
    rmSync(run.tmp, { recursive: true, force: true });
    await run.client.close();
  }
}

function validateOptions(opts: RestoreOptions): void {
  if (opts.mode !== "rebuild" && opts.mode !== "in-place") {
    throw new ConfigError(`mode '${String(opts.mode)}' is not one of rebuild, in-place`, { field: "mode" });
  }
  if (!opts.store && !opts.remote) throw new ConfigError("no snapshot store and no remote snapshot given", { field: "snapshot" });
  if (!opts.snapshot) throw new ConfigError("no snapshot given: use 'latest', s3://BUCKET/KEY or a key", { field: "snapshot" });
  for (const c of opts.canaries ?? []) {
    if (!c || c.startsWith("/")) throw new ConfigError(`canary path '${c}' must be a Vault API path like secret/data/dr-canary`, { field: "verify.canaries" });
  }
}
