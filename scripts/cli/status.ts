import type { Command } from "commander";
import {
  checkStatus,
  ConfigError,
  DEFAULT_ORPHAN_UPLOAD_AGE,
  describeOrphanUploads,
  ExitCode,
  formatBytes,
  lastPassedDrillAt,
  parseDuration,
  readClusterStatus,
  readEachClusterStatus,
  renderMetrics,
  type ClusterStatus,
} from "../../engine/index.js";
import { destinationOfReport, printJson, printText, runCommand, withPolicyStore } from "./common.js";
import { addDestinationFlag, addPolicyFlags, intFlag, policyFromCli, type PolicyFlags } from "./options.js";

interface StatusFlags extends PolicyFlags {
  json?: boolean;
  check?: boolean;
  allClusters?: boolean;
  maxFailures?: number;
  maxDrillAge?: string;
  prometheus?: boolean;
  uploadsOlderThan: string;
}

/** A duration flag ('30d', '6h'): checked before anything is read. */
export function durationFlag(flag: string): (v: string) => string {
  return (v) => {
    try {
      parseDuration(v);
    } catch {
      throw new ConfigError(`${flag}: '${v}' is not a duration; use e.g. '30m', '6h', '7d'`, { field: flag });
    }
    return v;
  };
}

/** The policy for commands that read every cluster under the prefix: a cluster name is then optional. */
export function readerPolicy(o: PolicyFlags, allClusters: boolean) {
  return policyFromCli(allClusters ? { ...o, cluster: o.cluster ?? process.env.VRB_CLUSTER ?? "all" } : o, process.env, { requireNodes: false });
}

const when = (iso: string | undefined) => iso ?? "never";

function formatStatus(s: ClusterStatus, problems: string[] | undefined): string {
  const lines = [`cluster ${s.cluster}  (${s.location}${s.recorded ? `, updated ${s.updatedAt} by vrb ${s.toolVersion}` : ", no run recorded yet"})`];
  for (const [kind, op] of Object.entries(s.operations)) {
    lines.push(
      `  ${kind.padEnd(8)} last attempt ${op.lastAttempt} (${op.lastAttemptOk ? "ok" : "FAILED"}), last success ${when(op.lastSuccess)}, ${op.consecutiveFailures} consecutive failure(s), ${op.runs} run(s)`,
    );
    if (op.lastError && !op.lastAttemptOk) lines.push(`           last error [stage: ${op.lastError.stage}] (exit ${op.lastError.exitCode}): ${op.lastError.message}`);
  }
  const g = s.newestGood;
  lines.push(
    g
      ? `  newest good snapshot: ${g.key} taken ${g.takenAt} (${Math.round(g.ageSeconds / 60)}m ago), ${formatBytes(g.bytes)}, raft index ${g.raftIndex}`
      : "  newest good snapshot: none",
  );
  lines.push(`  snapshots: ${s.goodSnapshots} good, ${s.lockedSnapshots} locked${s.invalidSnapshots ? `, ${s.invalidSnapshots} DAMAGED` : ""}`);
  for (const d of s.damaged ?? []) lines.push(`  DAMAGED: ${d.key} taken ${d.takenAt}: ${d.problem}${d.newerThanLatest ? " (newer than every good snapshot)" : ""}`);
  lines.push(...describeOrphanUploads(s.orphanUploads ?? [], s.uploadsOlderThan ?? DEFAULT_ORPHAN_UPLOAD_AGE).map((l) => `  ${l}`));
  const d = s.lastDrill;
  lines.push(
    d
      ? `  last drill: ${d.at} ${d.ok ? "OK" : "FAILED"}${d.rtoSeconds !== undefined ? `, RTO ${d.rtoSeconds.toFixed(1)}s` : ""}${d.snapshot ? `, ${d.snapshot}` : ""}`
      : "  last drill: never",
  );
  if (d && !d.ok) lines.push(...(d.problems ?? []).map((p) => `           problem: ${p}`));
  const passed = lastPassedDrillAt(s);
  if (s.drillEvery || (passed && passed !== d?.at)) lines.push(`  last passing drill: ${passed ?? "never"}${s.drillEvery ? ` (scheduled: drill.every ${s.drillEvery})` : ""}`);
  const skipped = s.lastSkippedDrill;
  if (skipped) lines.push(`  last skipped drill: ${skipped.at}${skipped.snapshot ? `, ${skipped.snapshot}` : ""}: ${skipped.skipped ?? "could not run"}`);
  lines.push(`  RPO: ${s.rpo.ok ? "ok" : "MISSED"}: ${s.rpo.message}`);
  if (problems) lines.push(...(problems.length ? problems.map((p) => `  CHECK FAILED: ${p}`) : ["  check: ok"]));
  return lines.join("\n");
}

export function registerStatus(program: Command): void {
  const cmd = program
    .command("status")
    .description("what the cluster's last backup, prune, restore and drill runs did (from its status object in the bucket), its snapshots and the RPO verdict");
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
    .option("--json", "print one JSON report on stdout")
    .option(
      "--check",
      "exit 1 when the RPO is missed, a snapshot is damaged, the last --max-failures backups (or prunes) failed, the newest scheduled drill failed or none passed within drill.every, or the last drill is older than --max-drill-age; prints why",
    )
    .option("--all-clusters", "every cluster under the bucket's prefix")
    .option("--max-failures <n>", "with --check: fail after this many consecutive failed runs (default 1)", intFlag("--max-failures", 1), 1)
    .option("--max-drill-age <duration>", "with --check: fail when the last drill failed, is missing, or is older than this (e.g. 30d)", durationFlag("--max-drill-age"))
    .option("--prometheus", "print the metrics in the Prometheus text format (node_exporter textfile collector)")
    .option(
      "--uploads-older-than <duration>",
      "report unfinished uploads (orphans of killed or failed runs) started longer ago than this (metric vrb_incomplete_uploads)",
      durationFlag("--uploads-older-than"),
      DEFAULT_ORPHAN_UPLOAD_AGE,
    )
    .action(async (o: StatusFlags) =>
      runCommand(o, async () => {
        if (o.json && o.prometheus) throw new ConfigError("give either --json or --prometheus, not both", { field: "--prometheus" });
        const policy = readerPolicy(o, Boolean(o.allClusters));
        return withPolicyStore(
          policy,
          async (store) => {
            const query = { store, every: policy.schedule.every, uploadsOlderThan: o.uploadsOlderThan };
            // A fleet is read cluster by cluster: one that cannot be read is reported, the others printed.
            const reads = o.allClusters
              ? await readEachClusterStatus(query)
              : [{ cluster: policy.cluster.name, status: await readClusterStatus({ ...query, cluster: policy.cluster.name }) }];
            const statuses = reads.flatMap((r) => (r.status ? [r.status] : []));
            const unreadable = reads.flatMap((r) => (r.status ? [] : [{ cluster: r.cluster, error: store.describeError(r.error) }]));
            for (const u of unreadable) process.stderr.write(`vrb: cluster ${u.cluster} could not be read: ${u.error}\n`);
            const checks = o.check ? statuses.map((s) => checkStatus(s, { maxFailures: o.maxFailures, maxDrillAge: o.maxDrillAge, drillEvery: policy.drill?.every })) : undefined;
            const checkFailed = checks?.some((c) => !c.ok) ?? false;
            const failed = checkFailed || unreadable.length > 0;
            if (checkFailed) {
              // Why, on stderr too: cron mails and CI logs show it even with --json / --prometheus.
              statuses.forEach((s, i) => checks![i]!.problems.forEach((p) => process.stderr.write(`vrb: check failed: ${s.cluster}: ${p}\n`)));
            }
            if (o.prometheus) process.stdout.write((await renderMetrics(statuses)).text);
            else if (o.json) {
              const items = statuses.map((s, i) => (checks ? { ...s, check: checks[i] } : s));
              const destination = destinationOfReport(store);
              printJson(
                o.allClusters
                  ? { ok: !failed, bucket: store.container, prefix: store.prefix, destination, clusters: items, ...(unreadable.length ? { unreadable } : {}) }
                  : { ok: !failed, ...items[0], destination },
              );
            } else if (!reads.length) printText(`no clusters under ${store.url(store.prefix)}`);
            else {
              const unread = unreadable.map((u) => `cluster ${u.cluster}  COULD NOT BE READ: ${u.error}`);
              printText([...statuses.map((s, i) => formatStatus(s, checks?.[i]?.problems)), ...unread].join("\n\n"));
            }
            return failed ? ExitCode.failed : ExitCode.ok;
          },
          o.destination,
        );
      }),
    );
}
