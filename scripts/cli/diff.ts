import type { Command } from "commander";
import { diffInventories, inventoryOf, SnapshotStore, type InventorySubject, type ObjectStore } from "../../engine/index.js";
import { destinationOfReport, openPolicyStore, printJson, printText, progressFor, runCommand } from "./common.js";
import { addDestinationFlag, addPolicyFlags, type PolicyFlags } from "./options.js";
import { isSnapshotFile, policyForRef } from "./snapshot-ref.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";

interface DiffFlags extends PolicyFlags, IdentityFlags {
  json?: boolean;
}

const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

export function registerDiff(program: Command): void {
  const cmd = program
    .command("diff <refA> <refB>")
    .description("keys and bytes per mount in snapshot A and in snapshot B, and the change (from the manifests' inventories, else read from the snapshots)");
  addIdentityFlag(addDestinationFlag(addPolicyFlags(cmd, { nodes: false })))
    .option("--json", "print one JSON report on stdout")
    .action(async (refA: string, refB: string, o: DiffFlags) =>
      runCommand(o, async () => {
        const progress = progressFor(o);
        // Only for an encrypted snapshot whose manifest has no inventory (it is then read from the plaintext).
        const identities = await identitiesFromFlags(o);
        // Each ref may name its own bucket: one store per stored ref, all closed at the end.
        const opened: ObjectStore[] = [];
        const subject = async (ref: string): Promise<InventorySubject> => {
          if (isSnapshotFile(ref)) return { file: ref };
          const policy = policyForRef(ref, o);
          const objects = await openPolicyStore(policy, o.destination);
          opened.push(objects);
          const store = new SnapshotStore(objects);
          return { store, snapshot: await store.resolve(ref, policy.cluster.name) };
        };
        try {
          const [a, b] = [await inventoryOf(await subject(refA), { progress, identities }), await inventoryOf(await subject(refB), { progress, identities })];
          const d = diffInventories(a, b);
          // Both stored refs are read from the one destination --destination names.
          if (o.json) return printJson(opened[0] ? { ...d, destination: destinationOfReport(opened[0]) } : d);
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
          for (const s of opened) s.close();
        }
      }),
    );
}
