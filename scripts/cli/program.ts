import type { Command } from "commander";
import { registerBackup } from "./backup.js";
import { assembleProgram, type RegisterCommand } from "./commands.js";
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

export { allCommands, COMMAND_DOCS, docsPath } from "./commands.js";

/** Every command's module, in COMMAND_MODULES's order (scripts/cli/commands.ts). */
export const ALL_COMMANDS: readonly RegisterCommand[] = [
  registerLocal,
  registerTools,
  registerDemo,
  registerBackup,
  registerList,
  registerVerify,
  registerPrune,
  registerRestore,
  registerDrill,
  registerFiles,
  registerRecover,
  registerExport,
  registerPresign,
  registerStatus,
  registerExporter,
  registerInspect,
  registerDiff,
  registerHold,
];

/**
 * The whole `vrb` program at once, every module imported statically: for the docs test, which
 * parses every `vrb` line of the docs with it (with the actions replaced), so the docs and the CLI
 * agree. `vrb` itself builds its program with programFor (scripts/cli/commands.ts), which loads only
 * the module of the command it runs; the same program for `--help`.
 */
export function buildProgram(): Command {
  return assembleProgram(ALL_COMMANDS);
}
