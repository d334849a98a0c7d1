import type { Command } from "commander";
import { ConfigError, createS3Client, filesOf, IntegrityError, SnapshotStore, writeFilesOut } from "../../engine/index.js";
import { printJson, printText, runCommand } from "./common.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";
import { addPolicyFlags, type PolicyFlags } from "./options.js";
import { restorePolicy } from "./restore.js";

interface FilesFlags extends PolicyFlags, IdentityFlags {
  out?: string;
  list?: boolean;
  force?: boolean;
  json?: boolean;
}

export function registerFiles(program: Command): void {
  const cmd = program
    .command("files <ref>")
    .description("the configuration files stored beside a snapshot (policy 'files'): --list shows them, --out DIR writes them back under DIR at their original paths");
  addIdentityFlag(addPolicyFlags(cmd, { nodes: false }))
    .option("--out <dir>", "write the files under this folder (each at its original absolute path below it); keys get 0600, new folders 0700")
    .option("--list", "list the files (path, size, mode, sha256) without downloading them")
    .option("--force", "replace files that exist under --out")
    .option("--json", "print one JSON report on stdout")
    .action(async (ref: string, o: FilesFlags) =>
      runCommand(o, async () => {
        if (!o.list && !o.out) throw new ConfigError("give --out DIR to write the files, or --list to show them", { field: "--out" });
        const identities = await identitiesFromFlags(o);
        const policy = restorePolicy(ref, o);
        const s3 = createS3Client(policy.destination);
        try {
          const store = new SnapshotStore(s3, policy.destination.bucket, policy.destination.prefix);
          const snapshot = await store.resolve(ref, policy.cluster.name);
          if (snapshot.status !== "good") {
            throw new IntegrityError(`s3://${snapshot.bucket}/${snapshot.key} is ${snapshot.status}: ${snapshot.problem ?? "no manifest"}`, { stage: "files" });
          }
          const files = filesOf(snapshot);
          if (o.list) {
            if (o.json) return printJson({ bucket: snapshot.bucket, key: files.key, encryption: snapshot.manifest?.encryption, entries: files.entries });
            return printText(
              files.entries.map((e) => `0${e.mode.toString(8)} ${String(e.size).padStart(9)} ${e.sha256.slice(0, 16)}  ${e.path}${e.secret ? "  (key)" : ""}`).join("\n"),
            );
          }
          const report = await writeFilesOut(store, snapshot, { out: o.out!, identities, force: o.force });
          if (o.json) return printJson(report);
          printText([`wrote ${report.written.length} file(s) under ${report.out}:`, ...report.written.map((w) => `  ${w.mode} ${w.to}`)].join("\n"));
        } finally {
          s3.destroy();
        }
      }),
    );
}
