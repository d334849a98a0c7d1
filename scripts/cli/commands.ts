import { join } from "node:path";
import { Command } from "./commander.js";
import { packageInfo, packageRoot } from "../../engine/package-info.js";
import { redact } from "../../engine/redact.js";

/** What a command module exports: adds its command(s), options and action to the program. */
export type RegisterCommand = (program: Command) => void;

/**
 * Every top-level command, in the order `vrb --help` lists them, and the module that registers it,
 * imported only when needed: `vrb backup` loads scripts/cli/backup.ts and what it imports, not the
 * restore, drill or local-environment code (docs/architecture.md#start-up). `hold` and `release`
 * share a module. scripts/cli/program.ts imports the same modules statically (buildProgram, for
 * the docs test); test/unit/cli-commands.test.ts keeps the two lists equal.
 */
export const COMMAND_MODULES: Readonly<Record<string, () => Promise<RegisterCommand>>> = {
  local: async () => (await import("./local.js")).registerLocal,
  tools: async () => (await import("./tools.js")).registerTools,
  demo: async () => (await import("./demo.js")).registerDemo,
  backup: async () => (await import("./backup.js")).registerBackup,
  list: async () => (await import("./list.js")).registerList,
  verify: async () => (await import("./verify.js")).registerVerify,
  prune: async () => (await import("./prune.js")).registerPrune,
  restore: async () => (await import("./restore.js")).registerRestore,
  drill: async () => (await import("./drill.js")).registerDrill,
  files: async () => (await import("./files.js")).registerFiles,
  recover: async () => (await import("./recover.js")).registerRecover,
  export: async () => (await import("./export.js")).registerExport,
  presign: async () => (await import("./presign.js")).registerPresign,
  status: async () => (await import("./status.js")).registerStatus,
  exporter: async () => (await import("./exporter.js")).registerExporter,
  inspect: async () => (await import("./inspect.js")).registerInspect,
  diff: async () => (await import("./diff.js")).registerDiff,
  hold: async () => (await import("./hold.js")).registerHold,
  release: async () => (await import("./hold.js")).registerHold,
};

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
 * The `vrb` program with `registers` (each once, in the order given): help texts pointing at their
 * docs page, commander errors thrown (exitOverride) instead of exiting.
 */
export function assembleProgram(registers: Iterable<RegisterCommand>): Command {
  const program = new Command("vrb")
    .description("vault-raft-backup: verified snapshots and staged restores of Vault / OpenBao Raft clusters")
    .version(packageInfo().version)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(redact(s)) });
  for (const register of new Set(registers)) register(program);

  program.addHelpText("after", `\nDocs: ${join(packageRoot(), "README.md")} and ${join(packageRoot(), "docs")}/ (one page per task; runbooks/ for incidents)`);
  for (const top of program.commands) {
    const page = COMMAND_DOCS[top.name()];
    if (!page) throw new Error(`vrb ${top.name()}: no docs page in COMMAND_DOCS`);
    for (const cmd of allCommands(top)) cmd.addHelpText("after", `\nDocs: ${docsPath(page)}`);
  }
  return program;
}

/**
 * The program for a command line (the arguments after `vrb`): when it starts with a command's name,
 * only that command's module is loaded; anything else (`--help`, `help`, no command, a mistyped
 * one that commander must name and suggest a fix for) gets every command.
 */
export async function programFor(args: readonly string[]): Promise<Command> {
  const name = args[0];
  const one = name !== undefined && Object.hasOwn(COMMAND_MODULES, name) ? COMMAND_MODULES[name] : undefined;
  const registers = await Promise.all((one ? [one] : Object.values(COMMAND_MODULES)).map((load) => load()));
  return assembleProgram(registers);
}
