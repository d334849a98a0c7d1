import type { Command } from "commander";
import {
  checkRestartCommand,
  ConfigError,
  describeProduct,
  exitCodeOf,
  isSnapshotUrl,
  loadKeysFile,
  messageOf,
  parseSnapshotKey,
  parseSnapshotRef,
  recordedStagedRestore,
  redact,
  restoreReportOf,
  VrbError,
  type BackupPolicy,
  type ExitCode,
  type RestoreKeys,
  type RestoreReport,
} from "../../engine/index.js";
import { destinationOfReport, openWatchedPolicyStore, printJson, printText, progressFor, runInterruptible, type GlobalOptions } from "./common.js";
import { addIdentityFlag, identitiesFromFlags, type IdentityFlags } from "./identity.js";
import { addDestinationFlag, addPolicyFlags, intFlag, optionalTokenFromCli, policyFromCli, type PolicyFlags } from "./options.js";
import { addUrlRefFlags, snapshotSourceFor, type UrlRefFlags } from "./url-ref.js";

/** Flags of the commands that restore (restore, drill). */
export interface RestoreFlags extends PolicyFlags, UrlRefFlags, IdentityFlags {
  unsealKeysFile?: string;
  recoveryKeysFile?: string;
  canary?: string[];
  stepTimeout?: number;
  json?: boolean;
}

export function addRestoreFlags(cmd: Command): Command {
  return addIdentityFlag(addUrlRefFlags(addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))))
    .option("--token-file <file>", "file holding a token of the snapshot's cluster, used when VAULT_TOKEN is unset (e.g. a Vault Agent sink)")
    .option("--unseal-keys-file <file>", "Shamir-sealed cluster: the ORIGINAL cluster's unseal keys ('bao operator init -format=json' output, or one base64 key per line)")
    .option(
      "--recovery-keys-file <file>",
      "auto-unseal cluster (transit, cloud KMS, PKCS#11): its recovery keys (init JSON with recovery_keys_b64, or one per line); optional, used only to make a verification token",
    )
    .option("--canary <path>", "a Vault path that must be readable afterwards (repeatable; default: the policy's verify.canaries)", (v: string, prev: string[] | undefined) => [
      ...(prev ?? []),
      v,
    ])
    .option("--step-timeout <seconds>", "deadline of every wait (default 120 s, more for the waits that grow with the snapshot)", intFlag("--step-timeout", 1))
    .option("--json", "print one JSON report on stdout");
}

/** The keys file of either flag (not both); init JSON says itself which kind it holds. */
export function keysFromFlags(o: RestoreFlags): RestoreKeys | undefined {
  if (o.unsealKeysFile && o.recoveryKeysFile) {
    throw new ConfigError("give either --unseal-keys-file (Shamir seal) or --recovery-keys-file (auto-unseal seal), not both", { field: "--recovery-keys-file" });
  }
  if (o.unsealKeysFile) return loadKeysFile(o.unsealKeysFile, "unseal");
  if (o.recoveryKeysFile) return loadKeysFile(o.recoveryKeysFile, "recovery");
  return undefined;
}

/** Stands in for the bucket of a policy built for a URL ref (no store is made for it). */
export const URL_REF_BUCKET = "url-ref-no-bucket";

/** Policy for a restore: an s3:// reference names its own bucket and cluster; nodes are not the policy's business here. */
export function restorePolicy(ref: string, o: PolicyFlags): BackupPolicy {
  const flags: PolicyFlags = { ...o };
  if (isSnapshotUrl(ref)) {
    // A pre-signed URL needs no bucket; the policy still carries TLS, token file and canaries.
    flags.bucket ??= process.env.VRB_BUCKET ?? URL_REF_BUCKET;
    flags.cluster ??= process.env.VRB_CLUSTER ?? "unknown";
  }
  if (ref.startsWith("s3://")) {
    const parsed = parseSnapshotRef(ref, "unused");
    if ("key" in parsed) {
      flags.bucket ??= parsed.bucket;
      flags.cluster ??= parseSnapshotKey(parsed.key)?.cluster ?? process.env.VRB_CLUSTER ?? "unknown";
    }
  }
  return policyFromCli(flags, process.env, { requireNodes: false });
}

export function formatRestore(r: RestoreReport): string {
  const source = r.snapshot.product ? ` (a ${describeProduct(r.snapshot.product, r.snapshot.version)} snapshot)` : "";
  const lines = [`${r.ok ? "OK" : "FAILED"} ${r.mode} restore of ${r.snapshot.url}${source} in ${(r.durationMs / 1000).toFixed(1)}s`];
  for (const s of r.steps) {
    const vault = s.vaultMs !== undefined && s.durationMs > 0 ? ` (vault ${(s.vaultMs / 1000).toFixed(2)}s)` : "";
    lines.push(
      `  ${s.result.padEnd(7)} ${`${s.step}${s.node ? ` @ ${s.node}` : ""}`.padEnd(72)} ${(s.durationMs / 1000).toFixed(2).padStart(7)}s${vault}${s.detail ? `  ${s.detail}` : ""}`,
    );
  }
  for (const n of r.nodes) lines.push(`  node ${n.addr}  ${n.nodeId ?? "?"}  ${n.role}${n.voter ? ", voter" : ""}`);
  if (r.autopilot) lines.push(`  autopilot: ${r.autopilot.healthy ? "healthy" : "UNHEALTHY"}, failure tolerance ${r.autopilot.failureTolerance}`);
  if (r.raftIndex !== undefined) lines.push(`  raft index ${r.raftIndex} (snapshot ${r.snapshot.raftIndex})`);
  for (const c of r.canaries) lines.push(`  canary ${c.path}: ${c.ok ? "readable" : "NOT READABLE"}`);
  if (r.seal) lines.push(`  seal: ${r.seal.type}${r.seal.recoverySeal ? " (auto-unseal)" : ""}`);
  lines.push(`  verification: ${r.verification === "full" ? `full (token: ${r.token})` : "token-free checks only (no working token)"}`);
  for (const n of r.notVerified) lines.push(`  NOT VERIFIED ${n.check} (${n.why}); to check: ${n.command}`);
  return lines.join("\n");
}

/**
 * A failed restore still has a report (the steps so far): with --json it is the one JSON document
 * on stdout, with the error beside it. The error text (states and next steps) goes to stderr.
 */
export function reportFailure(o: GlobalOptions, err: unknown): ExitCode {
  const code = exitCodeOf(err);
  const stage = err instanceof VrbError && err.stage ? ` [stage: ${err.stage}]` : "";
  process.stderr.write(redact(`vrb: error${stage}: ${messageOf(err)}`) + "\n");
  if (o.json) {
    const partial = (err as { report?: unknown }).report ?? restoreReportOf(err);
    printJson({
      ...(partial && typeof partial === "object" ? partial : {}),
      ok: false,
      exitCode: code,
      error: { message: messageOf(err), stage: err instanceof VrbError ? err.stage : undefined, kind: err instanceof Error ? err.name : "Error" },
    });
  }
  return code;
}

interface RestoreCliFlags extends RestoreFlags {
  nodes?: string;
  mode: string;
  force?: boolean;
  restartCommand?: string;
  unauthedGenerateRoot?: boolean;
}

export function registerRestore(program: Command): void {
  const cmd = program
    .command("restore <ref>")
    .description(
      "staged restore of a snapshot (s3://BUCKET/KEY, a key, 'latest', or a pre-signed https:// URL): rebuild empty nodes, or roll back a live cluster (--mode in-place)",
    );
  addRestoreFlags(cmd)
    .option("--nodes <urls>", "target API addresses, comma-separated; a rebuild restores onto the first (default VRB_RESTORE_NODES)")
    .option("--mode <mode>", "rebuild | in-place", "rebuild")
    .option("--force", "in-place: also restore a snapshot of another cluster (snapshot-force)")
    .option(
      "--restart-command <command>",
      "auto-unseal rebuild: shell command that restarts one node's server ({host}, {node}, {index}), e.g. 'ssh {host} sudo systemctl restart openbao'; node 1 is restarted after the restore instead of being sealed with a token",
    )
    .option("--unauthed-generate-root", "auto-unseal rebuild: the target nodes' listeners serve generate-root (not OpenBao's default), so a token is made from the recovery keys")
    .action(async (ref: string, o: RestoreCliFlags) =>
      runInterruptible(o, async (signal) => {
        const mode = o.mode;
        if (mode !== "rebuild" && mode !== "in-place") throw new ConfigError(`--mode must be rebuild or in-place, got '${o.mode}'`, { field: "--mode" });
        const nodes = (o.nodes ?? process.env.VRB_RESTORE_NODES ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean);
        if (nodes.length === 0) throw new ConfigError("no target nodes: pass --nodes URL,URL,URL (node 1 first)", { field: "--nodes" });
        const keys = keysFromFlags(o);
        const restartCommand = checkRestartCommand(o.restartCommand);
        const identities = await identitiesFromFlags(o);
        const policy = restorePolicy(ref, o);
        const { store: objects, explain } = await openWatchedPolicyStore(policy, o.destination);
        const source = snapshotSourceFor(ref, o, policy, objects);
        try {
          const progress = progressFor(o);
          const report = await recordedStagedRestore(policy, objects, {
            mode,
            nodes,
            ...source,
            keys,
            token: optionalTokenFromCli(policy),
            force: o.force,
            restartCommand,
            unauthedGenerateRoot: o.unauthedGenerateRoot,
            canaries: o.canary ?? policy.verify?.canaries,
            identities,
            progress,
            timeoutsMs: o.stepTimeout ? { step: o.stepTimeout * 1000 } : undefined,
            signal,
          });
          if (o.json) printJson(source.store ? { ...report, destination: destinationOfReport(objects) } : report);
          else printText(formatRestore(report));
        } catch (err) {
          return reportFailure(o, await explain(err));
        } finally {
          objects.close();
        }
      }),
    );
}
