import type { Command } from "commander";
import { setLegalHold, SnapshotStore } from "../../engine/index.js";
import { destinationOfReport, printJson, printText, runCommand, withPolicyStore } from "./common.js";
import { addDestinationFlag, addPolicyFlags, type PolicyFlags } from "./options.js";
import { policyForRef } from "./snapshot-ref.js";

interface HoldFlags extends PolicyFlags {
  json?: boolean;
}

/** `vrb hold` and `vrb release`: the two sides of one legal hold (S3 Object Lock; engine/catalogue/hold.ts). */
function registerOne(program: Command, name: "hold" | "release", hold: boolean, description: string): void {
  const cmd = program.command(`${name} <ref>`).description(description);
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
    .option("--json", "print one JSON report on stdout")
    .action(async (ref: string, o: HoldFlags) =>
      runCommand(o, async () => {
        const policy = policyForRef(ref, o);
        return withPolicyStore(
          policy,
          async (objects) => {
            const store = new SnapshotStore(objects);
            const snapshot = await store.resolve(ref, policy.cluster.name);
            const report = await setLegalHold(store.forSnapshot(snapshot), snapshot.key, hold);
            if (o.json) return printJson({ ...report, destination: destinationOfReport(objects) });
            printText(
              [
                `${hold ? "held" : "released"}: ${report.url}`,
                ...report.objects.map((x) => `  legal hold ${hold ? "ON " : "OFF"} ${x.key}${x.versionId ? ` (version ${x.versionId})` : ""}`),
              ].join("\n"),
            );
          },
          o.destination,
        );
      }),
    );
}

export function registerHold(program: Command): void {
  registerOne(
    program,
    "hold",
    true,
    "freeze a snapshot for incident response: S3 Object Lock legal hold on it, its manifest and every object beside it; nobody can delete them until `vrb release`",
  );
  registerOne(program, "release", false, "clear the legal hold that `vrb hold` set (its retention, if any, still applies)");
}
