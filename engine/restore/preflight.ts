import { join } from "node:path";
import { requireIdentityFor } from "../crypto/identities.js";
import { ConfigError, IntegrityError, OperationError } from "../errors.js";
import type { StoredSnapshot } from "../catalogue/snapshot-store.js";
import { verifyStoredSnapshot, type VerifyDownloadOptions } from "../catalogue/verify-stored.js";
import { sealStatus } from "../vault/operations.js";
import { proveUnsealKeys, SealEntries } from "./key-proof.js";
import type { RestoreRun } from "./restore-run.js";
import { planSeal, type SealFacts, type SealPlan } from "./seal.js";

// Preflight: nothing on any node changes here.

export async function resolveSnapshot(run: RestoreRun): Promise<StoredSnapshot> {
  return run.log.run("resolve snapshot", undefined, async (clock) => {
    const s = run.opts.remote ? await run.opts.remote.resolve(run.progress) : await run.opts.store!.resolve(run.opts.snapshot, run.opts.cluster, { signal: run.opts.signal });
    if (s.status !== "good" || !s.manifest) {
      throw new IntegrityError(`${s.url} is not a good snapshot (${s.problem ?? s.status}); it cannot be restored`, { stage: "preflight" });
    }
    // An encrypted snapshot without a matching identity stops here (exit 2), before any node is asked.
    if (s.manifest.encryption) requireIdentityFor(s.manifest.encryption, run.opts.identities, s.url, run.names.identity);
    run.snapshot = s;
    const seal = s.manifest.vault.seal;
    clock.detail = `${s.url} (raft index ${s.manifest.raft.index}, taken ${s.manifest.takenAt}, Vault ${s.manifest.vault.version}` + `${seal ? `, seal ${seal.type}` : ""})`;
    return s;
  });
}

/** Reads every target's seal (no token needed) and decides how the restore handles it. */
export async function checkSeal(run: RestoreRun, nodes: string[]): Promise<SealPlan> {
  return run.log.run("check seals", undefined, async (clock) => {
    const targets = await Promise.all(
      nodes.map(async (addr) => {
        const s = await sealStatus(run.client.forNode(addr)).catch((err: unknown) => {
          throw new OperationError(`cannot read the seal status of ${addr}: ${err instanceof Error ? err.message : String(err)}`, { stage: "preflight" });
        });
        const seal: SealFacts = { type: s.type || "shamir", recoverySeal: Boolean(s.recovery_seal) };
        return { addr, seal };
      }),
    );
    const plan = planSeal(targets, run.manifest?.vault.seal, run.opts.keys);
    run.seal = plan;
    const source = run.manifest?.vault.seal ? `snapshot and targets: ${plan.type}` : `targets: ${plan.type} (the manifest does not record the source's seal)`;
    clock.detail = plan.kind === "auto" ? `${source}; auto-unseal, no unseal steps` : `${source}; unsealed with the original unseal keys`;
    return plan;
  });
}

/** What the keys must be for the plan; said before any node changes. */
export function checkKeysForPlan(run: RestoreRun, plan: SealPlan): void {
  const keys = run.opts.keys;
  if (run.opts.mode !== "rebuild" || (keys && keys.keys.length > 0)) return;
  // A restarted auto-unseal node loads the restored keys by itself: recovery keys then only serve a verification token.
  if (plan.kind === "auto" && run.opts.restartCommand) return;
  if (plan.kind === "shamir") {
    throw new ConfigError(
      `a rebuild onto Shamir-sealed nodes needs the ORIGINAL cluster's unseal keys (the node seals itself after the restore): give ${run.names.unsealKeys}. Nothing was changed.`,
      { field: "keysFile", stage: "preflight" },
    );
  }
  throw new ConfigError(
    `a rebuild onto ${plan.type}-sealed nodes needs the ORIGINAL cluster's recovery keys: after the restore node 1 is sealed and unsealed once with them, ` +
      `so that it loads the restored cluster's keys (until then other nodes cannot join it). Give ${run.names.recoveryKeys}, or ${run.names.restartCommand} to restart node 1 instead. Nothing was changed.`,
    { field: "keysFile", stage: "preflight" },
  );
}

export async function downloadAndVerify(run: RestoreRun, snapshot: StoredSnapshot): Promise<string> {
  const file = join(run.tmp, "snapshot.snap");
  // Shamir keys that will unseal the restored node are proven from the same pass (engine/restore/key-proof.ts).
  const seal = shamirKeysToProve(run) ? new SealEntries() : undefined;
  await run.log.run("download and verify snapshot", undefined, async (clock) => {
    const opts = { progress: run.progress, saveTo: file, identities: run.opts.identities, observe: seal?.observe, signal: run.opts.signal };
    const v = await (run.opts.remote ? run.opts.remote.download(snapshot, opts) : fromStore(run, snapshot, opts));
    run.sha256 = v.sha256;
    clock.detail = `${v.bytes} bytes, sha256 ${v.sha256.slice(0, 12)}..., ${v.archive.entries} archive entries checked`;
  });
  if (seal) {
    await run.log.run("prove the unseal keys against the snapshot", undefined, async (clock) => {
      const proof = proveUnsealKeys(seal, run.opts.keys!, snapshot.url);
      if (proof.checked) clock.detail = `${proof.sharesUsed} key(s) open the snapshot's root key and keyring`;
      else {
        clock.detail = `not proven: ${proof.why}`;
        run.progress.warn(`the unseal keys could not be proven offline (${proof.why}); they are tried when node 1 is unsealed`);
      }
    });
  }
  return file;
}

/** A Shamir seal whose ORIGINAL unseal keys will unseal a node after snapshot-force: a rebuild, or an in-place --force. */
function shamirKeysToProve(run: RestoreRun): boolean {
  const keys = run.opts.keys;
  // The escape hatch should the proof ever refuse right keys (a barrier format it does not know): the keys are then tried at the unseal step, as before.
  if (process.env.VRB_SKIP_KEY_PROOF === "1") {
    run.progress.warn("VRB_SKIP_KEY_PROOF=1: the unseal keys are not proven against the snapshot; wrong keys show only when node 1 is unsealed");
    return false;
  }
  return run.seal?.kind === "shamir" && keys?.kind !== "recovery" && (keys?.keys.length ?? 0) > 0 && (run.opts.mode === "rebuild" || Boolean(run.opts.force));
}

function fromStore(run: RestoreRun, snapshot: StoredSnapshot, opts: VerifyDownloadOptions) {
  const store = snapshot.bucket === run.opts.store?.bucket ? run.opts.store : undefined;
  if (!store) throw new ConfigError(`snapshot bucket ${snapshot.bucket} differs from the store's bucket ${run.opts.store?.bucket}`, { field: "snapshot" });
  return verifyStoredSnapshot(store, snapshot, opts);
}
