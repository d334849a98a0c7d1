// The CLI proper, loaded by scripts/vrb.ts (in the process that runs the command).
import { CommanderError } from "./commander.js";
import { ExitCode } from "../../engine/errors.js";
import { redact } from "../../engine/redact.js";
import { programFor } from "./commands.js";
import { quietKnownWarnings } from "./launch.js";

quietKnownWarnings();

try {
  // Only the named command's module loads (scripts/cli/commands.ts); a failure to build the
  // program is reported like any other error.
  const program = await programFor(process.argv.slice(2));
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
