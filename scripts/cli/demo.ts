import type { Command } from "commander";
import { formatStatus, localStatus, localUp, loadEnvironment, defaultLocalDir, isAlive } from "../../engine/index.js";
import { printText, progressFor, runCommand } from "./common.js";

// The full disaster story (seed, back up, destroy, rebuild, prove) lands with the restore issue;
// until then the demo brings the local environment up and shows it.
export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("the disaster story on the local environment")
    .option("--dir <path>", "state folder (default .vrb/local)")
    .action(async (o: { dir?: string }) =>
      runCommand(o, async () => {
        const progress = progressFor(o);
        const existing = loadEnvironment(o.dir ?? defaultLocalDir());
        const env = existing && existing.nodes.some((n) => isAlive(n.pid)) ? existing : await localUp({ dir: o.dir, progress });
        printText(formatStatus(await localStatus(env)));
      }),
    );
}
