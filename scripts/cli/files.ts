import type { Command } from "commander";
import { ConfigError, filesOf, filesTar, readVerifiedFiles, redact, SnapshotStore, writeFilesOut } from "../../engine/index.js";
import { destinationOfReport, printJson, printText, runInterruptible, withPolicyStore } from "./common.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";
import { addDestinationFlag, addPolicyFlags, type PolicyFlags } from "./options.js";
import { restorePolicy } from "./restore.js";
import { resolveGood } from "./snapshot-ref.js";

interface FilesFlags extends PolicyFlags, IdentityFlags {
  out?: string;
  list?: boolean;
  force?: boolean;
  base64?: boolean;
  json?: boolean;
}

export function registerFiles(program: Command): void {
  const cmd = program
    .command("files <ref>")
    .description(
      "the configuration files stored beside a snapshot (policy 'files'): --list shows them, --out DIR writes them back under DIR at their original paths, --out - writes them as one tar on stdout",
    );
  addIdentityFlag(addDestinationFlag(addPolicyFlags(cmd, { nodes: false })))
    .option(
      "--out <dir>",
      "write the files under this folder (each at its original absolute path below it); keys get 0600, new folders 0700; - writes one tar to stdout (never to a terminal)",
    )
    .option("--list", "list the files (path, size, mode, sha256) without downloading them")
    .option("--force", "replace files that exist under --out")
    .option("--base64", "with --out -: the tar as base64 text (for a shell variable or a Pulumi Command's stdout)")
    .option("--json", "print one JSON report on stdout")
    .action(async (ref: string, o: FilesFlags) =>
      runInterruptible(o, async (signal) => {
        if (!o.list && !o.out) throw new ConfigError("give --out DIR to write the files, or --list to show them", { field: "--out" });
        // The tar holds private keys in plain text: never onto a terminal.
        if (o.out === "-" && !o.list && process.stdout.isTTY) {
          throw new ConfigError("--out - writes the decrypted files (keys included) to stdout, which is a terminal: pipe it (| tar -x -p -C DIR) or give --out DIR", {
            field: "--out",
          });
        }
        if (o.base64 && o.out !== "-") throw new ConfigError("--base64 applies only to --out -", { field: "--base64" });
        const identities = await identitiesFromFlags(o);
        const policy = restorePolicy(ref, o);
        return withPolicyStore(
          policy,
          async (objects) => {
            const store = new SnapshotStore(objects);
            const snapshot = await resolveGood(store, ref, policy.cluster.name, "files");
            const files = filesOf(snapshot);
            if (o.list) {
              if (o.json)
                return printJson({
                  bucket: snapshot.bucket,
                  destination: destinationOfReport(objects),
                  key: files.key,
                  encryption: snapshot.manifest?.encryption,
                  entries: files.entries,
                });
              return printText(
                files.entries.map((e) => `0${e.mode.toString(8)} ${String(e.size).padStart(9)} ${e.sha256.slice(0, 16)}  ${e.path}${e.secret ? "  (key)" : ""}`).join("\n"),
              );
            }
            if (o.out === "-") return await tarToStdout(store, snapshot, identities, o, signal);
            const report = await writeFilesOut(store, snapshot, { out: o.out!, identities, force: o.force, signal });
            if (o.json) return printJson({ ...report, destination: destinationOfReport(objects) });
            printText([`wrote ${report.written.length} file(s) under ${report.out}:`, ...report.written.map((w) => `  ${w.mode} ${w.to}`)].join("\n"));
          },
          o.destination,
        );
      }),
    );
}

/**
 * `--out -`: the verified, decrypted files as one tar (modes as a restore gives them) on stdout,
 * nothing before the whole archive checked out. stdout carries the data, so the report goes to
 * stderr: with --json one line naming the snapshot used (a `latest` ref resolved), which the DR
 * stack reads to restore exactly that snapshot.
 */
async function tarToStdout(
  store: SnapshotStore,
  snapshot: Awaited<ReturnType<SnapshotStore["resolve"]>>,
  identities: Awaited<ReturnType<typeof identitiesFromFlags>>,
  o: FilesFlags,
  signal: AbortSignal,
): Promise<void> {
  const files = await readVerifiedFiles(store, snapshot, identities, signal);
  const tar = await filesTar(files, new Date(snapshot.manifest!.takenAt));
  await new Promise<void>((resolve, reject) => process.stdout.write(o.base64 ? `${tar.toString("base64")}\n` : tar, (err) => (err ? reject(err) : resolve())));
  const ref = snapshot.url;
  const report = { snapshot: ref, filesKey: filesOf(snapshot).key, files: files.map((f) => ({ path: f.entry.path, size: f.data.length, secret: f.entry.secret })) };
  process.stderr.write(redact(o.json ? JSON.stringify(report) : `wrote ${files.length} file(s) of ${ref} to stdout`) + "\n");
}
