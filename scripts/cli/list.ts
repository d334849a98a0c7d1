import type { Command } from "commander";
import {
  DEFAULT_ORPHAN_UPLOAD_AGE,
  describeOrphanUploads,
  ExitCode,
  findOrphanUploads,
  formatBytes,
  parseDuration,
  productOfManifest,
  recoveryPointStatus,
  SnapshotStore,
  StatusStore,
  describeVerdict,
} from "../../engine/index.js";
import { destinationOfReport, printJson, printText, runCommand, withPolicyStore } from "./common.js";
import { addDestinationFlag, addPolicyFlags, policyFromCli, type PolicyFlags } from "./options.js";
import { durationFlag } from "./status.js";

interface ListFlags extends PolicyFlags {
  json?: boolean;
  checkRpo?: boolean;
  uploadsOlderThan: string;
}

export function registerList(program: Command): void {
  const cmd = program.command("list").description("the cluster's snapshots, newest first: good, suspect, incomplete, keys, locked until, legal hold");
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
    .option("--json", "print one JSON report on stdout")
    .option("--check-rpo", "exit 1 when the newest good snapshot is older than the schedule allows (for cron and monitoring)")
    .option(
      "--uploads-older-than <duration>",
      "also list unfinished uploads (orphans of killed or failed runs) started longer ago than this",
      durationFlag("--uploads-older-than"),
      DEFAULT_ORPHAN_UPLOAD_AGE,
    )
    .action(async (o: ListFlags) =>
      runCommand(o, async () => {
        const policy = policyFromCli(o, process.env, { requireNodes: false });
        return withPolicyStore(
          policy,
          async (objects) => {
            const store = new SnapshotStore(objects);
            const snapshots = await store.list(policy.cluster.name);
            // Each snapshot's drill verdict (policy drill; docs/status.md): a reader without the record still gets the list.
            const drills = await new StatusStore(objects)
              .read(policy.cluster.name)
              .then(({ record }) => record?.drills)
              .catch(() => undefined);
            const retentions = await store.retentions(snapshots);
            const rows = snapshots.map((s, i) => {
              const r = retentions[i];
              const locked = r?.until && r.until.getTime() > Date.now();
              return {
                key: s.key,
                status: s.status,
                takenAt: s.takenAt.toISOString(),
                raftIndex: s.raftIndex,
                bytes: s.bytes,
                sha256: s.manifest?.sha256,
                // The source's product (guessed from its version for manifests older than the field) and version.
                product: s.manifest ? productOfManifest(s.manifest.vault) : undefined,
                version: s.manifest?.vault.version,
                lock: locked ? { mode: r!.mode, until: r!.until!.toISOString() } : undefined,
                legalHold: r?.legalHold || undefined,
                keys: s.manifest?.inventory?.totalKeys,
                suspect: s.manifest?.suspect,
                problem: s.problem,
                drill: drills?.[s.key],
              };
            });
            const rpo = recoveryPointStatus(snapshots, policy.schedule.every);
            // Credentials that may not list multipart uploads still get the snapshots.
            const orphans = await findOrphanUploads(objects, store.clusterPrefix(policy.cluster.name), parseDuration(o.uploadsOlderThan)).catch(() => undefined);
            const orphanLines = describeOrphanUploads(orphans ?? [], o.uploadsOlderThan);
            const code = o.checkRpo && !rpo.ok ? ExitCode.failed : ExitCode.ok;
            if (o.json) {
              printJson({
                ok: code === ExitCode.ok,
                bucket: store.bucket,
                prefix: store.prefix,
                destination: destinationOfReport(objects),
                cluster: policy.cluster.name,
                rpo,
                snapshots: rows,
                ...(orphans ? { incompleteUploads: orphans, uploadsOlderThan: o.uploadsOlderThan } : {}),
              });
              return code;
            }
            const rpoLine = `RPO: ${rpo.ok ? "ok" : "MISSED"}: ${rpo.message}`;
            // A store without locks (a directory) says so on every row: "unlocked" would suggest a lock was possible.
            const unlocked = objects.capabilities.lock ? "unlocked" : "no lock (this destination cannot lock objects)";
            if (!rows.length) {
              printText([`no snapshots of cluster '${policy.cluster.name}' in ${store.url(store.clusterPrefix(policy.cluster.name))}`, rpoLine, ...orphanLines].join("\n"));
              return code;
            }
            printText(
              rows
                .map((r) => {
                  const lock = (r.lock ? `locked ${r.lock.mode} until ${r.lock.until}` : unlocked) + (r.legalHold ? ", HELD" : "");
                  const why = r.problem ? ` (${r.problem})` : r.suspect ? ` (${r.suspect.reason})` : "";
                  const status = r.suspect ? "suspect" : r.status;
                  const keys = r.keys !== undefined ? `${r.keys} keys` : "? keys";
                  const source = r.product ? `${r.product} ${r.version ?? "?"}` : "?";
                  const drill = describeVerdict(r.drill) + (r.drill?.rtoSeconds !== undefined && r.drill.ok ? ` (RTO ${r.drill.rtoSeconds.toFixed(1)}s)` : "");
                  return `${status.padEnd(10)} ${r.takenAt}  index ${String(r.raftIndex).padEnd(8)} ${formatBytes(r.bytes).padStart(10)} ${keys.padStart(12)}  ${source.padEnd(14)}  ${lock}  ${drill}  ${r.key}${why}`;
                })
                .join("\n") + ["", rpoLine, ...orphanLines].join("\n"),
            );
            return code;
          },
          o.destination,
        );
      }),
    );
}
