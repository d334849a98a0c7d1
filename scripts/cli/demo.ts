import type { Command } from "commander";

import { formatDemo, runDemo } from "../../devenv/demo.js";
import { printJson, printText, progressFor, runCommand } from "./common.js";
import { intFlag } from "./options.js";
import { reportFailure } from "./restore.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("the disaster story on the local environment: seed secrets, back up, destroy every node, rebuild 3 new nodes from the bucket, read every secret back")
    .option("--dir <path>", "local environment folder (default .vrb/local, or VRB_LOCAL_DIR); started if not running")
    .option("--secrets <n>", "secrets to seed (two versions each)", intFlag("--secrets", 1), 200)
    .option("--json", "print one JSON report on stdout")
    .action(async (o: { dir?: string; secrets: number; json?: boolean }) =>
      runCommand(o, async () => {
        try {
          const report = await runDemo({ dir: o.dir, secrets: o.secrets, progress: progressFor(o) });
          if (o.json) printJson(report);
          else printText(formatDemo(report));
        } catch (err) {
          return reportFailure(o, err);
        }
      }),
    );
}
