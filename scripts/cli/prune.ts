import type { Command } from "commander";
import { ExitCode, pruneSnapshots, recordRun, runTargetFor, SnapshotStore } from "../../engine/index.js";
import { printJson, printText, progressFor, runCommand, withPolicyStore } from "./common.js";
import { addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";

interface PruneFlags extends PolicyFlags {
  json?: boolean;
  dryRun?: boolean;
}

export function registerPrune(program: Command): void {
  const cmd = program.command("prune").description("apply retention (keepLast / maxAgeDays): never the newest good snapshot; locked ones are reported, not failed");
  addPolicyFlags(cmd, { nodes: false })
    .option("--keep-last <n>", "keep the newest N good snapshots (overrides retention.keepLast)", intFlag("--keep-last", 1))
    .option("--max-age-days <d>", "delete good snapshots older than D days (overrides retention.maxAgeDays)", intFlag("--max-age-days", 1))
    .option("--dry-run", "say what would be deleted, delete nothing")
    .option("--json", "print one JSON report on stdout")
    .action(async (o: PruneFlags) =>
      runCommand(o, async () => {
        const policy = policyFromCli(o, process.env, { requireNodes: false });
        return withPolicyStore(policy, async (objects) => {
          const store = new SnapshotStore(objects);
          const progress = progressFor(o);
          const prune = () => pruneSnapshots(store, policy.cluster.name, policy.retention, { dryRun: o.dryRun, progress });
          // A dry run changes nothing, so it is not a run of the cluster's job: not recorded.
          const report = o.dryRun
            ? await prune()
            : await recordRun("prune", runTargetFor(policy, objects, progress), prune, (r) => ({
                ok: r.failed.length === 0,
                error: r.failed.length
                  ? {
                      stage: "delete",
                      message: `${r.failed.length} deletion(s) failed: ${r.failed.map((f) => `${f.key}: ${f.error}`).join("; ")}`,
                      exitCode: ExitCode.failed,
                      kind: "PruneFailure",
                    }
                  : undefined,
              }));
          if (o.json) printJson(report);
          else {
            const verb = report.dryRun ? "would delete" : "deleted";
            printText(
              [
                `${verb} ${report.deleted.length}, kept ${report.kept.length}, still locked ${report.locked.length}, failed ${report.failed.length}`,
                ...report.deleted.map((d) => `  ${verb}: ${d.key} (${d.reason})`),
                ...report.locked.map((d) => `  locked${d.until ? ` until ${d.until}` : ""}${d.legalHold ? " (legal hold: vrb release)" : ""}: ${d.key} (${d.reason})`),
                ...report.failed.map((d) => `  FAILED: ${d.key}: ${d.error}`),
              ].join("\n"),
            );
          }
          return report.failed.length ? ExitCode.failed : ExitCode.ok;
        });
      }),
    );
}
