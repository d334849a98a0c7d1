import type { Command } from "commander";
import { ExitCode, formatBytes, productOfManifest, recoveryPointStatus, SnapshotStore } from "../../engine/index.js";
import { printJson, printText, runCommand, withPolicyStore } from "./common.js";
import { addPolicyFlags, policyFromCli, type PolicyFlags } from "./options.js";

interface ListFlags extends PolicyFlags {
  json?: boolean;
  checkRpo?: boolean;
}

export function registerList(program: Command): void {
  const cmd = program.command("list").description("the cluster's snapshots, newest first: good, suspect, incomplete, keys, locked until, legal hold");
  addPolicyFlags(cmd, { nodes: false })
    .option("--json", "print one JSON report on stdout")
    .option("--check-rpo", "exit 1 when the newest good snapshot is older than the schedule allows (for cron and monitoring)")
    .action(async (o: ListFlags) =>
      runCommand(o, async () => {
        const policy = policyFromCli(o, process.env, { requireNodes: false });
        return withPolicyStore(policy, async (objects) => {
          const store = new SnapshotStore(objects);
          const snapshots = await store.list(policy.cluster.name);
          const rows = await Promise.all(
            snapshots.map(async (s) => {
              const r = await store.retention(s.key).catch(() => undefined);
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
              };
            }),
          );
          const rpo = recoveryPointStatus(snapshots, policy.schedule.every);
          const code = o.checkRpo && !rpo.ok ? ExitCode.failed : ExitCode.ok;
          if (o.json) {
            printJson({ ok: code === ExitCode.ok, bucket: store.bucket, prefix: store.prefix, cluster: policy.cluster.name, rpo, snapshots: rows });
            return code;
          }
          const rpoLine = `RPO: ${rpo.ok ? "ok" : "MISSED"}: ${rpo.message}`;
          // A store without locks (a directory) says so on every row: "unlocked" would suggest a lock was possible.
          const unlocked = objects.capabilities.lock ? "unlocked" : `no lock (a ${objects.type} store has none)`;
          if (!rows.length) {
            printText(`no snapshots of cluster '${policy.cluster.name}' in ${store.url(store.clusterPrefix(policy.cluster.name))}\n${rpoLine}`);
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
                return `${status.padEnd(10)} ${r.takenAt}  index ${String(r.raftIndex).padEnd(8)} ${formatBytes(r.bytes).padStart(10)} ${keys.padStart(12)}  ${source.padEnd(14)}  ${lock}  ${r.key}${why}`;
              })
              .join("\n") + `\n${rpoLine}`,
          );
          return code;
        });
      }),
    );
}
