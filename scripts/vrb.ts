#!/usr/bin/env node
import { CommanderError } from "commander";
import { ExitCode, redact } from "../engine/index.js";
import { quietKnownWarnings } from "./cli/common.js";
import { buildProgram } from "./cli/program.js";

quietKnownWarnings();

const program = buildProgram();

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
