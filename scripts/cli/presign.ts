import type { Command } from "commander";
import { parseDuration, presignSnapshot, SnapshotStore } from "../../engine/index.js";
import { destinationOfReport, printJson, printText, runCommand, withPolicyStore } from "./common.js";
import { snapshotPolicy } from "./export.js";
import { addDestinationFlag, addPolicyFlags, type PolicyFlags } from "./options.js";

interface PresignFlags extends PolicyFlags {
  expires: string;
  json?: boolean;
}

export function registerPresign(program: Command): void {
  const cmd = program
    .command("presign <ref>")
    .description("print pre-signed GET URLs of a snapshot (s3://BUCKET/KEY, a key, or 'latest') and its manifest, for restore/verify/drill elsewhere");
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
    .option("--expires <duration>", "how long the URLs work, e.g. 30m, 1h, 1d (at most 7d)", "1h")
    .option("--json", "print one JSON document on stdout")
    .action(async (ref: string, o: PresignFlags) =>
      runCommand(o, async () => {
        const seconds = Math.round(parseDuration(o.expires) / 1000);
        const policy = snapshotPolicy(ref, o);
        return withPolicyStore(
          policy,
          async (objects) => {
            const store = new SnapshotStore(objects);
            const urls = await presignSnapshot(store, await store.resolve(ref, policy.cluster.name), seconds);
            // The URLs are the output asked for (stdout only); they grant read access until expiresAt.
            if (o.json) return printJson({ ...urls, destination: destinationOfReport(objects) });
            printText(
              [
                `# ${urls.location}: sha256 ${urls.sha256}, ${urls.bytes} bytes; the URLs work until ${urls.expiresAt}. Treat them as secrets.`,
                `snapshot: ${urls.snapshotUrl}`,
                `manifest: ${urls.manifestUrl}`,
              ].join("\n"),
            );
          },
          o.destination,
        );
      }),
    );
}
