// `npm run bench [-- backup|restore|catalogue] [options]`: prints figures; never fails on a slow machine.
import { quietKnownWarnings } from "./cli/common.js";

quietKnownWarnings();
const [which = "backup", ...rest] = process.argv.slice(2);
const suites: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  backup: () => import("./bench/backup.js"),
  restore: () => import("./bench/restore.js"),
  catalogue: () => import("./bench/catalogue.js"),
};
const load = suites[which];
if (!load) {
  process.stderr.write(`bench: unknown suite '${which}'; use one of: ${Object.keys(suites).join(", ")}\n`);
  process.exit(2);
}
try {
  await (await load()).main(rest);
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
