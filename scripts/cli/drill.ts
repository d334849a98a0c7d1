import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { ConfigError, describeProduct, recordRun, runDrill, runTargetFor, type DrillReport } from "../../engine/index.js";
import { destinationOfReport, openWatchedPolicyStore, printJson, printText, progressFor, runInterruptible } from "./common.js";
import { identitiesFromFlags } from "./identity.js";
import { intFlag, optionalTokenFromCli } from "./options.js";
import { addRestoreFlags, formatRestore, keysFromFlags, reportFailure, restorePolicy, type RestoreFlags } from "./restore.js";
import { snapshotSourceFor } from "./url-ref.js";

interface DrillFlags extends RestoreFlags {
  nodes: number;
  sealConfig?: string;
  minSecrets?: number;
}

function formatDrill(r: DrillReport): string {
  return [
    `${r.ok ? "DRILL OK" : "DRILL FAILED"}: RTO ${(r.rtoMs / 1000).toFixed(1)}s (${r.nodes} fresh node(s) started in ${(r.nodeStartMs / 1000).toFixed(1)}s, restore ${(r.restore.durationMs / 1000).toFixed(1)}s)`,
    `  throwaway nodes: ${describeProduct(r.throwaway.product, r.throwaway.version)}`,
    formatRestore(r.restore),
    `  KV secrets: ${r.secrets} (${r.inventory.map((m) => `${m.mount}: ${m.secrets}`).join(", ") || "no KV mounts"})`,
    ...(r.mountKeys.length ? [`  keys per mount (restored / manifest): ${r.mountKeys.map((m) => `${m.mount} ${m.found}/${m.expected}`).join(", ")}`] : []),
    ...r.problems.map((p) => `  problem: ${p}`),
    `  torn down: ${r.teardown.stopped} node(s) stopped, ${r.teardown.removed} removed`,
  ].join("\n");
}

/** What the status record keeps of a drill (docs/status.md); a snapshot of the store gets its verdict by key (`vrb list`, retention). */
function drillFacts(r: DrillReport, fromStore: boolean) {
  const at = new Date(Date.now() - r.rtoMs).toISOString();
  return {
    ok: r.ok,
    error: r.ok ? undefined : { stage: "drill checks", message: r.problems.join("; ") || "the drill failed", exitCode: 1, kind: "DrillFailure" },
    drill: {
      at,
      ok: r.ok,
      rtoSeconds: r.rtoMs / 1000,
      snapshot: r.snapshot.url,
      key: fromStore ? r.snapshot.key : undefined,
      problems: r.problems.length ? r.problems : undefined,
    },
  };
}

/** The seal block for the drill's nodes; checked for shape only (the nodes' own start-up checks the rest). */
export function readSealConfig(path: string): string {
  if (!existsSync(path)) throw new ConfigError(`--seal-config: file ${path} does not exist`, { field: "--seal-config" });
  const text = readFileSync(path, "utf8");
  if (!/^\s*seal\s+"[A-Za-z0-9_-]+"\s*\{/m.test(text)) {
    throw new ConfigError(`--seal-config: ${path} has no 'seal "<type>" { ... }' block; copy the seal stanza of the cluster's server config`, { field: "--seal-config" });
  }
  return text;
}

export function registerDrill(program: Command): void {
  const cmd = program
    .command("drill [ref]")
    .description("rehearse a rebuild: restore a snapshot (default: the newest good one) into a throwaway local cluster, check it, tear it down, report the RTO");
  addRestoreFlags(cmd)
    .option("--nodes <n>", "size of the throwaway cluster", intFlag("--nodes", 1), 3)
    .option("--seal-config <file>", "auto-unseal snapshot: a file with the cluster's 'seal \"<type>\" { ... }' block (as in its server config); the throwaway nodes use it")
    .option("--min-secrets <n>", "fail unless the restored cluster holds at least this many KV secrets", intFlag("--min-secrets", 0))
    .action(async (ref: string | undefined, o: DrillFlags) =>
      runInterruptible(o, async (signal) => {
        const keys = keysFromFlags(o);
        const identities = await identitiesFromFlags(o);
        const snapshot = ref ?? "latest";
        const policy = restorePolicy(snapshot, o);
        const { store: objects, explain } = await openWatchedPolicyStore(policy, o.destination);
        const source = snapshotSourceFor(snapshot, o, policy, objects);
        try {
          const progress = progressFor(o);
          const report = await recordRun(
            "drill",
            runTargetFor(policy, objects, progress),
            () =>
              runDrill({
                ...source,
                cluster: policy.cluster.name,
                keys,
                token: optionalTokenFromCli(policy),
                nodes: o.nodes,
                shape: o.sealConfig ? { sealStanza: readSealConfig(o.sealConfig) } : undefined,
                canaries: o.canary ?? policy.verify?.canaries,
                minSecrets: o.minSecrets,
                identities,
                progress,
                timeoutsMs: o.stepTimeout ? { step: o.stepTimeout * 1000 } : undefined,
                signal,
              }),
            (r) => drillFacts(r, Boolean(source.store)),
          );
          if (o.json) printJson(source.store ? { ...report, destination: destinationOfReport(objects) } : report);
          else printText(formatDrill(report));
          return report.ok ? undefined : 1;
        } catch (err) {
          return reportFailure(o, await explain(err));
        } finally {
          objects.close();
        }
      }),
    );
}
