import type { Command } from "commander";
import {
  abortOrphanUploads,
  DEFAULT_ORPHAN_UPLOAD_AGE,
  ExitCode,
  findOrphanUploads,
  messageOf,
  parseDuration,
  pruneSnapshots,
  recordRun,
  runTargetFor,
  SnapshotStore,
  type OrphanAbortReport,
  type PruneReport,
} from "../../engine/index.js";
import { printJson, printText, progressFor, runCommand, withPolicyStore } from "./common.js";
import { addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";
import { durationFlag } from "./status.js";

interface PruneFlags extends PolicyFlags {
  json?: boolean;
  dryRun?: boolean;
  abortUploadsOlderThan: string;
}

/** Retention's report and the orphan uploads aborted (with --dry-run: found) in the same run; `unchecked`: why they could not be listed. */
type PruneRunReport = PruneReport & { uploads: OrphanAbortReport & { olderThan: string; unchecked?: string } };

export function registerPrune(program: Command): void {
  const cmd = program.command("prune").description("apply retention (keepLast / maxAgeDays): never the newest good snapshot; locked ones are reported, not failed");
  addPolicyFlags(cmd, { nodes: false })
    .option("--keep-last <n>", "keep the newest N good snapshots (overrides retention.keepLast)", intFlag("--keep-last", 1))
    .option("--max-age-days <d>", "delete good snapshots older than D days (overrides retention.maxAgeDays)", intFlag("--max-age-days", 1))
    .option("--dry-run", "say what would be deleted, delete nothing")
    .option(
      "--abort-uploads-older-than <duration>",
      "abort unfinished uploads (orphans of killed or failed runs) started longer ago than this",
      durationFlag("--abort-uploads-older-than"),
      DEFAULT_ORPHAN_UPLOAD_AGE,
    )
    .option("--json", "print one JSON report on stdout")
    .action(async (o: PruneFlags) =>
      runCommand(o, async () => {
        const policy = policyFromCli(o, process.env, { requireNodes: false });
        return withPolicyStore(policy, async (objects) => {
          const store = new SnapshotStore(objects);
          const progress = progressFor(o);
          const prune = async (): Promise<PruneRunReport> => {
            const report = await pruneSnapshots(store, policy.cluster.name, policy.retention, { dryRun: o.dryRun, progress });
            const olderThan = o.abortUploadsOlderThan;
            // Credentials that may delete snapshots but not list multipart uploads still apply retention.
            const orphans = await findOrphanUploads(objects, store.clusterPrefix(policy.cluster.name), parseDuration(olderThan)).catch((err: unknown) => {
              const why = messageOf(err);
              progress.warn(`unfinished uploads were not checked: listing them failed (${why})`);
              return why;
            });
            if (typeof orphans === "string") return { ...report, uploads: { aborted: [], failed: [], olderThan, unchecked: orphans } };
            const uploads = o.dryRun ? { aborted: orphans, failed: [] } : await abortOrphanUploads(objects, orphans);
            return { ...report, uploads: { ...uploads, olderThan } };
          };
          // A dry run changes nothing, so it is not a run of the cluster's job: not recorded.
          const report = o.dryRun
            ? await prune()
            : await recordRun("prune", runTargetFor(policy, objects, progress), prune, (r) => ({
                ok: r.failed.length === 0 && r.uploads.failed.length === 0,
                error: r.failed.length
                  ? {
                      stage: "delete",
                      message: `${r.failed.length} deletion(s) failed: ${r.failed.map((f) => `${f.key}: ${f.error}`).join("; ")}`,
                      exitCode: ExitCode.failed,
                      kind: "PruneFailure",
                    }
                  : r.uploads.failed.length
                    ? {
                        stage: "abort uploads",
                        message: `${r.uploads.failed.length} unfinished upload(s) could not be aborted: ${r.uploads.failed.map((f) => `${f.key}: ${f.error}`).join("; ")}`,
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
                report.uploads.unchecked !== undefined
                  ? `unfinished uploads: not checked (${report.uploads.unchecked})`
                  : `unfinished uploads older than ${report.uploads.olderThan}: ${report.dryRun ? "would abort" : "aborted"} ${report.uploads.aborted.length}, failed ${report.uploads.failed.length}`,
                ...report.uploads.aborted.map((u) => `  ${report.dryRun ? "would abort" : "aborted"}: ${u.key} started ${u.started}, upload id ${u.id}`),
                ...report.uploads.failed.map((u) => `  FAILED to abort: ${u.key} upload id ${u.id}: ${u.error}`),
              ].join("\n"),
            );
          }
          return report.failed.length || report.uploads.failed.length ? ExitCode.failed : ExitCode.ok;
        });
      }),
    );
}
