import { join } from "node:path";
import { Command } from "commander";
import { packageInfo, packageRoot, redact } from "../../engine/index.js";
import { registerBackup } from "./backup.js";
import { registerDemo } from "./demo.js";
import { registerDiff } from "./diff.js";
import { registerDrill } from "./drill.js";
import { registerFiles } from "./files.js";
import { registerExport } from "./export.js";
import { registerExporter } from "./exporter.js";
import { registerHold } from "./hold.js";
import { registerInspect } from "./inspect.js";
import { registerList } from "./list.js";
import { registerLocal } from "./local.js";
import { registerPresign } from "./presign.js";
import { registerPrune } from "./prune.js";
import { registerRecover } from "./recover.js";
import { registerRestore } from "./restore.js";
import { registerStatus } from "./status.js";
import { registerTools } from "./tools.js";
import { registerVerify } from "./verify.js";

/** The docs page (under docs/) that explains each top-level command; its subcommands share it. */
export const COMMAND_DOCS: Readonly<Record<string, string>> = {
  backup: "backup.md",
  list: "backup.md",
  verify: "backup.md",
  prune: "backup.md",
  restore: "restore.md",
  drill: "restore.md",
  files: "encryption.md",
  recover: "recover.md",
  export: "export.md",
  presign: "export.md",
  local: "local.md",
  tools: "local.md",
  demo: "local.md",
  status: "status.md",
  exporter: "status.md",
  inspect: "inspect.md",
  diff: "inspect.md",
  hold: "inspect.md",
  release: "inspect.md",
};

/** Where a docs page is: the repository checkout, or the installed package (docs/ ships with it). */
export function docsPath(page: string): string {
  return join(packageRoot(), "docs", page);
}

/** Every command of the tree, depth first, the root included. */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/**
 * The `vrb` program: every command registered, help texts pointing at their docs page, commander
 * errors thrown (exitOverride) instead of exiting. `scripts/vrb.ts` runs it; the docs test parses
 * every `vrb` line of the docs with it (with the actions replaced), so the docs and the CLI agree.
 */
export function buildProgram(): Command {
  const program = new Command("vrb")
    .description("vault-raft-backup: verified snapshots and staged restores of Vault / OpenBao Raft clusters")
    .version(packageInfo().version)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(redact(s)) });

  registerLocal(program);
  registerTools(program);
  registerDemo(program);
  registerBackup(program);
  registerList(program);
  registerVerify(program);
  registerPrune(program);
  registerRestore(program);
  registerDrill(program);
  registerFiles(program);
  registerRecover(program);
  registerExport(program);
  registerPresign(program);
  registerStatus(program);
  registerExporter(program);
  registerInspect(program);
  registerDiff(program);
  registerHold(program);

  program.addHelpText("after", `\nDocs: ${join(packageRoot(), "README.md")} and ${join(packageRoot(), "docs")}/ (one page per task; runbooks/ for incidents)`);
  for (const top of program.commands) {
    const page = COMMAND_DOCS[top.name()];
    if (!page) throw new Error(`vrb ${top.name()}: no docs page in COMMAND_DOCS`);
    for (const cmd of allCommands(top)) cmd.addHelpText("after", `\nDocs: ${docsPath(page)}`);
  }
  return program;
}
