#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ExitCode, packageInfo, redact } from "../engine/index.js";
import { quietKnownWarnings } from "./cli/common.js";
import { registerLocal } from "./cli/local.js";
import { registerDemo } from "./cli/demo.js";
import { registerBackup } from "./cli/backup.js";
import { registerList } from "./cli/list.js";
import { registerVerify } from "./cli/verify.js";
import { registerPrune } from "./cli/prune.js";
import { registerRestore } from "./cli/restore.js";
import { registerDrill } from "./cli/drill.js";

quietKnownWarnings();

const program = new Command("vrb")
  .description("vault-raft-backup: verified snapshots and staged restores of Vault / OpenBao Raft clusters")
  .version(packageInfo().version)
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(redact(s)) });

registerLocal(program);
registerDemo(program);
registerBackup(program);
registerList(program);
registerVerify(program);
registerPrune(program);
registerRestore(program);
registerDrill(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version are not errors; anything else commander rejects is a usage error.
    process.exitCode = err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  } else {
    process.stderr.write(redact(`vrb: ${err instanceof Error ? err.message : String(err)}`) + "\n");
    process.exitCode = (err as { exitCode?: number }).exitCode ?? ExitCode.failed;
  }
}
