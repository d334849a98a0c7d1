import type { Command } from "commander";
import {
  abortOrphanUploads,
  DEFAULT_ORPHAN_UPLOAD_AGE,
  destinationNamed,
  destinationsOf,
  explainS3Error,
  ExitCode,
  findOrphanUploads,
  messageOf,
  parseDuration,
  pruneSnapshots,
  recordRun,
  runTargetFor,
  SnapshotStore,
  type BackupPolicy,
  type ObjectStore,
  type OrphanAbortReport,
  type Progress,
  type PruneReport,
} from "../../engine/index.js";
import { destinationOfReport, printJson, printText, progressFor, runInterruptible, withPolicyStore, type DestinationOfReport } from "./common.js";
import { addDestinationFlag, addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";
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
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
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
      runInterruptible(o, async (signal) => {
        const policy = policyFromCli(o, process.env, { requireNodes: false });
        // Retention and locks are each destination's own: one destination named, else every one in turn, the primary first.
        const names = o.destination !== undefined ? [destinationNamed(policy, o.destination).name] : destinationsOf(policy).map((d) => d.name);
        const progress = progressFor(o);
        const results: DestinationPrune[] = [];
        for (const name of names) {
          try {
            results.push(await withPolicyStore(policy, (objects) => pruneDestination(objects, policy, o, progress, signal), name));
          } catch (err) {
            // One destination that fails does not keep retention from the others; with one, its
            // error is the command's. A stop (SIGTERM) stops them all.
            if (names.length === 1 || signal.aborted) throw err;
            results.push({ destination: { name, url: undefined }, error: messageOf(explainS3Error(err)) });
          }
        }
        const failed = results.some((r) => r.error !== undefined || r.report!.failed.length > 0 || r.report!.uploads.failed.length > 0);
        if (o.json) {
          const one = (r: DestinationPrune) => (r.report ? { ...r.report, destination: r.destination } : { ok: false, destination: r.destination, error: { message: r.error } });
          printJson(results.length === 1 ? one(results[0]!) : { ok: !failed, dryRun: Boolean(o.dryRun), destinations: results.map(one) });
        } else if (results.length === 1) printText(formatPrune(results[0]!.report!));
        else {
          printText(
            results
              .map(
                (r) =>
                  `destination '${r.destination.name}'${r.destination.url ? ` (${r.destination.url})` : ""}:\n` + (r.report ? formatPrune(r.report, "  ") : `  FAILED: ${r.error}`),
              )
              .join("\n"),
          );
        }
        return failed ? ExitCode.failed : ExitCode.ok;
      }),
    );
}

/** What prune did on one destination: its report, or the error that stopped it there. */
interface DestinationPrune {
  destination: { name: string; type?: DestinationOfReport["type"]; url?: string };
  report?: PruneRunReport;
  error?: string;
}

/** Retention and orphan uploads on one destination's store, recorded in that destination's status object. */
async function pruneDestination(objects: ObjectStore, policy: BackupPolicy, o: PruneFlags, progress: Progress, signal: AbortSignal): Promise<DestinationPrune> {
  const store = new SnapshotStore(objects);
  const prune = async (): Promise<PruneRunReport> => {
    const report = await pruneSnapshots(store, policy.cluster.name, policy.retention, { dryRun: o.dryRun, progress, signal });
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
  return { destination: destinationOfReport(objects), report };
}

function formatPrune(report: PruneRunReport, indent = ""): string {
  const verb = report.dryRun ? "would delete" : "deleted";
  return [
    `${verb} ${report.deleted.length}, kept ${report.kept.length}, still locked ${report.locked.length}, failed ${report.failed.length}`,
    ...report.deleted.map((d) => `  ${verb}: ${d.key} (${d.reason})`),
    ...report.locked.map((d) => `  locked${d.until ? ` until ${d.until}` : ""}${d.legalHold ? " (legal hold: vrb release)" : ""}: ${d.key} (${d.reason})`),
    ...report.failed.map((d) => `  FAILED: ${d.key}: ${d.error}`),
    report.uploads.unchecked !== undefined
      ? `unfinished uploads: not checked (${report.uploads.unchecked})`
      : `unfinished uploads older than ${report.uploads.olderThan}: ${report.dryRun ? "would abort" : "aborted"} ${report.uploads.aborted.length}, failed ${report.uploads.failed.length}`,
    ...report.uploads.aborted.map((u) => `  ${report.dryRun ? "would abort" : "aborted"}: ${u.key} started ${u.started}, upload id ${u.id}`),
    ...report.uploads.failed.map((u) => `  FAILED to abort: ${u.key} upload id ${u.id}: ${u.error}`),
  ]
    .map((l) => indent + l)
    .join("\n");
}
