import type { Command } from "commander";
import type { S3Client } from "@aws-sdk/client-s3";
import { createS3Client, diffInventories, inventoryOf, SnapshotStore, type InventorySubject } from "../../engine/index.js";
import { printJson, printText, progressFor, runCommand } from "./common.js";
import { addPolicyFlags, type PolicyFlags } from "./options.js";
import { isSnapshotFile, policyForRef } from "./snapshot-ref.js";

interface DiffFlags extends PolicyFlags {
  json?: boolean;
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

export function registerDiff(program: Command): void {
  const cmd = program
    .command("diff <refA> <refB>")
    .description("keys and bytes per mount in snapshot A and in snapshot B, and the change (from the manifests' inventories, else read from the snapshots)");
  addPolicyFlags(cmd, { nodes: false })
    .option("--json", "print one JSON report on stdout")
    .action(async (refA: string, refB: string, o: DiffFlags) =>
      runCommand(o, async () => {
        const progress = progressFor(o);
        const clients: S3Client[] = [];
        const subject = async (ref: string): Promise<InventorySubject> => {
          if (isSnapshotFile(ref)) return { file: ref };
          const policy = policyForRef(ref, o);
          const s3 = createS3Client(policy.destination);
          clients.push(s3);
          const store = new SnapshotStore(s3, policy.destination.bucket, policy.destination.prefix);
          return { store, snapshot: await store.resolve(ref, policy.cluster.name) };
        };
        try {
          const [a, b] = [await inventoryOf(await subject(refA), { progress }), await inventoryOf(await subject(refB), { progress })];
          const d = diffInventories(a, b);
          if (o.json) return printJson(d);
          const changed = d.mounts.filter((m) => m.change.keys !== 0 || m.change.bytes !== 0);
          printText(
            [
              `A ${d.a.source} (${d.a.from})`,
              `B ${d.b.source} (${d.b.from})`,
              `total: ${d.total.before.keys} → ${d.total.after.keys} keys (${signed(d.total.change.keys)}), bytes ${signed(d.total.change.bytes)}`,
              ...changed.map(
                (m) =>
                  `  ${m.kind} ${m.path ? `${m.path} (${m.type}) ` : ""}${m.uuid}: ${m.before.keys} → ${m.after.keys} keys (${signed(m.change.keys)}), bytes ${signed(m.change.bytes)}`,
              ),
              `${d.mounts.length - changed.length} mount(s) unchanged`,
            ].join("\n"),
          );
        } finally {
          for (const c of clients) c.destroy();
        }
      }),
    );
}
