import type { Command } from "commander";
import {
  ExitCode,
  redact,
  DEFAULT_BACKUP_RETRIES,
  DEFAULT_LEADER_WAIT_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  formatBytes,
  runRecordedBackup,
  type ScheduledDrillOutcome,
} from "../../engine/index.js";
import { printJson, printText, progressFor, runInterruptible } from "./common.js";
import { addAuthFlags, addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";

interface BackupFlags extends PolicyFlags {
  json?: boolean;
  retries?: number;
  leaderWait?: number;
  stallTimeout?: number;
}

export function registerBackup(program: Command): void {
  const cmd = program.command("backup").description("take a snapshot of the cluster and store it, verified and locked, in the destination store (manifest written last)");
  addAuthFlags(addPolicyFlags(cmd))
    .option(
      "--retries <n>",
      `re-run the whole backup this many times after a failure, with jittered backoff (the active node is looked up again; default policy backup.retries, else ${DEFAULT_BACKUP_RETRIES})`,
      intFlag("--retries", 0),
    )
    .option(
      "--leader-wait <seconds>",
      `wait this long for an active node while the cluster elects a leader (default policy backup.leaderWaitSeconds, else ${DEFAULT_LEADER_WAIT_MS / 1000})`,
      intFlag("--leader-wait", 0),
    )
    .option(
      "--stall-timeout <seconds>",
      `abort when neither Vault nor the store moves a byte for this long (default ${DEFAULT_STALL_TIMEOUT_MS / 1000})`,
      intFlag("--stall-timeout", 1),
    )
    .option("--json", "print one JSON report on stdout")
    .action(async (o: BackupFlags) =>
      // Ctrl-C or a pod's SIGTERM stops the backup cleanly: its upload aborted, no manifest, exit 130/143.
      runInterruptible(o, async (signal) => {
        const policy = policyFromCli(o);
        const { report, drill, url, failures } = await runRecordedBackup({
          policy,
          progress: progressFor(o),
          retries: o.retries ?? policy.backup?.retries ?? DEFAULT_BACKUP_RETRIES,
          leaderWaitMs: o.leaderWait !== undefined ? o.leaderWait * 1000 : undefined,
          stallTimeoutMs: o.stallTimeout ? o.stallTimeout * 1000 : undefined,
          signal,
        });
        // onCopyFailure fail, or a failed drill: the report is printed as it is, and the exit status says what is wrong.
        for (const f of failures) process.stderr.write(redact(`vrb: error [stage: ${f.stage}]: ${f.message}`) + "\n");
        const failure = failures[0];
        const reported = drill ? { ...report, drill } : report;
        if (o.json) {
          printJson(failure ? { ...reported, ok: false, exitCode: ExitCode.failed, error: { message: failure.message, stage: failure.stage, kind: failure.name } } : reported);
          return failure ? ExitCode.failed : undefined;
        }
        const secs = (report.durationsMs.total ?? 0) / 1000;
        printText(
          [
            url,
            `  ${formatBytes(report.bytes)} in ${secs.toFixed(1)}s, sha256 ${report.sha256}`,
            `  raft index ${report.raft.index}, term ${report.raft.term}, leader ${report.vault.leaderAddr} (version ${report.vault.version})`,
            report.lock ? `  locked ${report.lock.mode} until ${report.lock.until}` : "  not locked (no objectLock in the policy)",
            ...report.destinations.slice(1).map((d) => (d.ok ? `  copy '${d.name}': ok ${d.url}` : `  copy '${d.name}': FAILED at stage ${d.stage}: ${d.error}`)),
            ...report.warnings.map((w) => `  warning: ${w}`),
            ...(drill ? [describeDrill(drill)] : []),
          ].join("\n"),
        );
        return failure ? ExitCode.failed : undefined;
      }),
    );
}

/** The backup's line about its scheduled drill (policy drill). */
function describeDrill(d: ScheduledDrillOutcome): string {
  if (d.state === "passed") return `  drill: PASSED, RTO ${d.rtoSeconds!.toFixed(1)}s: ${d.reason}`;
  if (d.state === "failed") return `  drill: FAILED: ${d.reason}`;
  return d.state === "skipped" ? `  drill: SKIPPED: ${d.reason}` : `  drill: not due: ${d.reason}`;
}
