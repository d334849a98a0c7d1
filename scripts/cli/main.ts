// The CLI proper, loaded by scripts/vrb.ts (in the process that runs the command).
import { CommanderError } from "commander";
import { ExitCode, redact } from "../../engine/index.js";
import { quietKnownWarnings } from "./common.js";
import { buildProgram } from "./program.js";

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
