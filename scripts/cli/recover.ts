import type { Command } from "commander";
import { ConfigError, describeProduct, recoverSecrets, SnapshotStore, type RecoverReport } from "../../engine/index.js";
import { destinationOfReport, openPolicyStore, printJson, printText, progressFor, runInterruptible } from "./common.js";
import { readSealConfig } from "./drill.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";
import { addAuthFlags, addDestinationFlag, addPolicyFlags, intFlag, optionalTokenFromCli } from "./options.js";
import { keysFromFlags, reportFailure, restorePolicy, type RestoreFlags } from "./restore.js";

interface RecoverFlags extends RestoreFlags, IdentityFlags {
  path?: string[];
  aclPolicy?: string[];
  dryRun?: boolean;
  sealConfig?: string;
}

const repeatable = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

function formatRecover(r: RecoverReport): string {
  const head = r.dryRun ? "DRY RUN (nothing written)" : "RECOVERED";
  const lines = [
    `${head}: ${r.snapshot.url} (raft index ${r.snapshot.raftIndex}, taken ${r.snapshot.takenAt}; throwaway node: ${describeProduct(r.throwaway.product, r.throwaway.version)}) -> ${r.live}`,
  ];
  for (const p of r.paths) {
    const detail =
      p.action === "written"
        ? `written${p.versionsWritten ? ` (${p.versionsWritten} version(s)${p.metadataWritten ? ", custom metadata" : ""})` : p.metadataWritten ? " (custom metadata)" : ""}`
        : r.dryRun && p.state !== "same"
          ? "would be written"
          : "";
    lines.push(`  ${p.state.padEnd(8)} ${p.kind.padEnd(6)} ${p.path}${detail ? `  ${detail}` : ""}`);
  }
  const s = r.summary;
  lines.push(`  ${s.missing} missing, ${s.differs} differ, ${s.same} same; ${s.written} written`);
  lines.push(`  torn down: ${r.teardown.stopped} throwaway node(s) stopped, ${r.teardown.removed} removed`);
  return lines.join("\n");
}

export function registerRecover(program: Command): void {
  const cmd = program
    .command("recover <ref>")
    .description("get single KV secrets and ACL policies back from a snapshot into the live cluster, without rolling it back (through a throwaway local node)");
  addIdentityFlag(addAuthFlags(addDestinationFlag(addPolicyFlags(cmd))))
    .option("--path <mount/path>", "KV secret to recover, as for 'bao kv get' (e.g. secret/app/db); ending in '/' recovers the whole subtree (repeatable)", repeatable)
    .option("--acl-policy <name>", "ACL policy (sys/policies/acl) to recover (repeatable)", repeatable)
    .option("--dry-run", "only compare: list each path as missing / differs / same on the live cluster; write nothing")
    .option("--unseal-keys-file <file>", "Shamir-sealed snapshot: the ORIGINAL cluster's unseal keys ('bao operator init -format=json' output, or one base64 key per line)")
    .option(
      "--recovery-keys-file <file>",
      "auto-unseal snapshot: its recovery keys (init JSON with recovery_keys_b64, or one per line); used only to make a token on the throwaway node",
    )
    .option("--seal-config <file>", "auto-unseal snapshot: a file with the cluster's 'seal \"<type>\" { ... }' block; the throwaway node uses it")
    .option(
      "--step-timeout <seconds>",
      "deadline of every wait of the throwaway restore (default 120 s, more for the waits that grow with the snapshot)",
      intFlag("--step-timeout", 1),
    )
    .option("--json", "print one JSON report on stdout")
    .action(async (ref: string, o: RecoverFlags) =>
      runInterruptible(o, async (signal) => {
        const keys = keysFromFlags(o);
        const shape = o.sealConfig ? { sealStanza: readSealConfig(o.sealConfig) } : undefined;
        const policy = restorePolicy(ref, o);
        if (policy.cluster.nodes.length === 0) {
          throw new ConfigError("no live Vault address to recover into: pass --vault-addr URL, set VAULT_ADDR, or list cluster.nodes in --policy", { field: "cluster.nodes" });
        }
        const objects = await openPolicyStore(policy, o.destination);
        try {
          const report = await recoverSecrets({
            store: new SnapshotStore(objects),
            snapshot: ref,
            cluster: policy.cluster.name,
            paths: o.path ?? [],
            aclPolicies: o.aclPolicy ?? [],
            live: { cluster: policy.cluster },
            keys,
            token: optionalTokenFromCli(policy),
            shape,
            identities: await identitiesFromFlags(o),
            dryRun: o.dryRun,
            progress: progressFor(o),
            timeoutsMs: o.stepTimeout ? { step: o.stepTimeout * 1000 } : undefined,
            signal,
          });
          if (o.json) printJson({ ...report, destination: destinationOfReport(objects) });
          else printText(formatRecover(report));
        } catch (err) {
          return reportFailure(o, err);
        } finally {
          objects.close();
        }
      }),
    );
}
