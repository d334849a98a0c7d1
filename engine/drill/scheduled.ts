import { existsSync, readFileSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { loadIdentities, identitySourcesFromFiles, IDENTITY_PASSPHRASE_ENV, type Identities } from "../crypto/identities.js";
import { OperationError, messageOf } from "../errors.js";
import { SnapshotStore } from "../catalogue/snapshot-store.js";
import type { BackupPolicy } from "../policy.js";
import { silentProgress, type Progress } from "../progress.js";
import { redact } from "../redact.js";
import { loadKeysFile, type RestoreKeys } from "../restore/keys.js";
import { CLI_RESTORE_SETTINGS, type RestoreSettingNames } from "../restore/setting-names.js";
import { parseDuration } from "../schedule.js";
import { drillDue } from "../status/drills.js";
import type { DrillFacts } from "../status/record.js";
import { recordRunIn, runTargetFor, type RunFacts } from "../status/run.js";
import { StatusStore } from "../status/status-store.js";
import type { ObjectStore } from "../storage/object-store.js";
import { productBinary, productVersion } from "../throwaway/binaries.js";
import { compareVersions, describeProduct, productOfManifest, type Product } from "../vault/product.js";
import type { DrillReport } from "./drill.js";
import { timeoutSignal } from "../timeout-signal.js";

/** What the scheduled drill after a backup did: the backup's report and exit status carry it. */
export interface ScheduledDrillOutcome {
  /** passed / failed: the drill ran; skipped: it could not run here (never a pass); not-due: a drill passed within drill.every. */
  state: "passed" | "failed" | "skipped" | "not-due";
  /** In words: why not due, why skipped, what failed. */
  reason: string;
  /** The snapshot drilled (the one the backup just stored). */
  key: string;
  rtoSeconds?: number;
  problems?: string[];
  /** The server the throwaway node ran. */
  throwaway?: { product: Product; version?: string };
  /** KV secrets and mounts found in the restored node. */
  secrets?: number;
}

export interface ScheduledDrillOptions {
  /** Its `drill` section says when and how; without one, no drill. */
  policy: BackupPolicy;
  /** The primary destination's store: the snapshot and the status record are there. */
  store: ObjectStore;
  /** The snapshot the backup just stored, and the source it came from (the backup report's facts). */
  snapshot: { key: string; bytes: number; vault: { product?: Product; version?: string } };
  progress?: Progress;
  /** Stops the drill (SIGINT, SIGTERM); the throwaway node is torn down, nothing is recorded. */
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  now?: Date;
  /** Free bytes where the throwaway nodes go (default: statfs of drill.workDir or the OS temp folder); tests replace it. */
  freeBytes?: (dir: string) => number;
}

/** Room a drill needs beside the snapshot: a downloaded copy, each node's Raft data, the inventory's snapshot of the restored node, and some slack. */
export function drillDiskNeed(snapshotBytes: number, nodes: number): number {
  return snapshotBytes * (2 + nodes) + 64 * 1024 * 1024;
}

/** Why a drill cannot run on this machine, or what it runs with. */
type Prepared = { skip: string } | { keys: RestoreKeys; identities?: Identities; sealStanza?: string; product: Product };

async function prepare(opts: ScheduledDrillOptions): Promise<Prepared> {
  const d = opts.policy.drill!;
  const env = opts.env ?? process.env;
  const keysPath = d.unsealKeysFile ?? d.recoveryKeysFile!;
  const keysField = d.unsealKeysFile ? "drill.unsealKeysFile" : "drill.recoveryKeysFile";
  if (!existsSync(keysPath)) return { skip: `${keysField} ${keysPath} does not exist on this machine` };
  let keys: RestoreKeys;
  try {
    keys = loadKeysFile(keysPath, d.unsealKeysFile ? "unseal" : "recovery");
  } catch (err) {
    return { skip: `${keysField} ${keysPath} cannot be used: ${messageOf(err)}` };
  }
  let sealStanza: string | undefined;
  if (d.sealConfigFile) {
    if (!existsSync(d.sealConfigFile)) return { skip: `drill.sealConfigFile ${d.sealConfigFile} does not exist on this machine` };
    sealStanza = readFileSync(d.sealConfigFile, "utf8");
    if (!/^\s*seal\s+"[A-Za-z0-9_-]+"\s*\{/m.test(sealStanza)) return { skip: `drill.sealConfigFile ${d.sealConfigFile} has no 'seal "<type>" { ... }' block` };
  }
  let identities: Identities | undefined;
  if (d.identityFile) {
    if (!existsSync(d.identityFile)) return { skip: `drill.identityFile ${d.identityFile} does not exist on this machine` };
    try {
      identities = await loadIdentities(identitySourcesFromFiles([d.identityFile]), env[IDENTITY_PASSPHRASE_ENV] || undefined);
    } catch (err) {
      return { skip: `drill.identityFile ${d.identityFile} cannot be used: ${messageOf(err)}` };
    }
  }
  // The same product and version as the snapshot's source: a drill proves the restore a rebuild would do.
  const { vault } = opts.snapshot;
  const product = productOfManifest(vault);
  const source = describeProduct(product, vault.version);
  let local: string | undefined;
  try {
    productBinary(product);
    local = productVersion(product);
  } catch (err) {
    return { skip: `no local binary of ${source}, the snapshot's source: ${messageOf(err)}` };
  }
  if (vault.version && local && compareVersions(vault.version, local) !== 0) {
    return {
      skip: `the snapshot is from ${source}, and this machine has ${describeProduct(product, local)}: a drill restores into the same version ('npx vrb tools install' installs the pinned one; VRB_TOOLS_BIN points to another folder of binaries)`,
    };
  }
  const dir = d.workDir ?? tmpdir();
  if (!existsSync(dir)) return { skip: `drill.workDir ${dir} does not exist` };
  const need = drillDiskNeed(opts.snapshot.bytes, d.nodes);
  let free: number;
  try {
    free = (opts.freeBytes ?? freeBytesIn)(dir);
  } catch (err) {
    return { skip: `free space in ${dir} cannot be read: ${messageOf(err)}` };
  }
  if (free < need) {
    return {
      skip: `not enough disk space in ${dir}: ${mib(free)} free, the drill needs about ${mib(need)} for the ${mib(opts.snapshot.bytes)} snapshot; free some or set drill.workDir`,
    };
  }
  return { keys, identities, sealStanza, product };
}

function freeBytesIn(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/**
 * What a scheduled drill's restore messages name: the policy's drill fields. Its waits have no
 * setting of their own (drill.timeBudget bounds the whole drill), and running it again means the
 * next backup or `vrb drill`.
 */
const SCHEDULED_DRILL_SETTINGS: RestoreSettingNames = {
  ...CLI_RESTORE_SETTINGS,
  unsealKeys: "drill.unsealKeysFile",
  recoveryKeys: "drill.recoveryKeysFile",
  identity: "drill.identityFile",
  stepTimeout: undefined,
  rerun: "drill it again with 'vrb drill <key>'",
  rerunIsVrbRestore: false,
};

/**
 * After a backup: when the policy has a `drill` section and no drill passed within `drill.every`
 * (the cluster's status record says), restores the snapshot just stored into a throwaway node of
 * its product and version, with the policy's keys and identity, and checks it (unseal, canaries,
 * keys per mount against the manifest). The verdict (passed, failed with its problems, or skipped
 * with why) is recorded as a drill run in the status record, beside the snapshot's key. Undefined
 * without a `drill` section. Never throws for a failed or skipped drill; only an interruption.
 */
export async function drillAfterBackup(opts: ScheduledDrillOptions): Promise<ScheduledDrillOutcome | undefined> {
  const d = opts.policy.drill;
  if (!d) return undefined;
  const progress = opts.progress ?? silentProgress;
  const key = opts.snapshot.key;
  const cluster = opts.policy.cluster.name;
  let record;
  try {
    ({ record } = await new StatusStore(opts.store).read(cluster, { abortSignal: opts.signal }));
  } catch (err) {
    // Not knowing when the last drill passed is no reason to skip one.
    progress.warn(`drill: the status record could not be read (${redact(opts.store.describeError(err))}); drilling`);
  }
  const due = drillDue(record, d.every, opts.now);
  if (!due.due) {
    progress.info(`drill: not due: ${due.reason}`);
    return { state: "not-due", reason: due.reason, key };
  }
  progress.info(`drill: due (${due.reason}): restoring ${opts.store.url(key)} into a throwaway node`);
  const startedAt = new Date();
  const target = runTargetFor(opts.policy, opts.store, progress);
  const url = opts.store.url(key);
  const prepared = await prepare(opts);
  if ("skip" in prepared) {
    progress.warn(`drill: SKIPPED: ${prepared.skip}`);
    await recordRunIn(target, "drill", startedAt, {
      drillEvery: d.every,
      ok: false,
      exitCode: 0,
      error: { stage: "drill skipped", message: redact(prepared.skip), exitCode: 0, kind: "DrillSkipped" },
      drill: { at: startedAt.toISOString(), ok: false, snapshot: url, key, skipped: redact(prepared.skip) },
    });
    return { state: "skipped", reason: prepared.skip, key };
  }
  const budgetMs = parseDuration(d.timeBudget);
  const signal = timeoutSignal(budgetMs, opts.signal);
  let report: DrillReport | undefined;
  let failure: string | undefined;
  try {
    // The drill's ~40 modules (throwaway nodes, the staged restore) load only when a drill is due.
    const { runDrill } = await import("./drill.js");
    report = await runDrill({
      store: new SnapshotStore(opts.store),
      snapshot: url,
      cluster,
      keys: prepared.keys,
      nodes: d.nodes,
      canaries: opts.policy.verify?.canaries,
      shape: { product: prepared.product, ...(prepared.sealStanza ? { sealStanza: prepared.sealStanza } : {}) },
      identities: prepared.identities,
      workDir: d.workDir,
      progress,
      timeoutsMs: { total: budgetMs },
      settingNames: SCHEDULED_DRILL_SETTINGS,
      signal,
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    // Past the budget, whatever the drill was doing when it stopped: the RTO is over what the policy allows.
    failure = signal.aborted ? `the drill ran past drill.timeBudget ${d.timeBudget} and was stopped (${messageOf(err).split("\n")[0]})` : messageOf(err);
  }
  const problems = report ? report.problems : [redact(failure!)];
  const ok = Boolean(report?.ok);
  const rtoSeconds = report ? report.rtoMs / 1000 : undefined;
  const drill: DrillFacts = { at: startedAt.toISOString(), ok, rtoSeconds, snapshot: url, key, problems: problems.length ? problems : undefined };
  const facts: RunFacts = ok
    ? { ok: true, drill, drillEvery: d.every }
    : {
        ok: false,
        exitCode: 1,
        drillEvery: d.every,
        error: { stage: "drill", message: problems.join("; ").slice(0, 2000) || "the drill failed", exitCode: 1, kind: "DrillFailure" },
        drill,
      };
  await recordRunIn(target, "drill", startedAt, facts);
  const outcome: ScheduledDrillOutcome = {
    state: ok ? "passed" : "failed",
    reason: ok ? `restored into ${describeProduct(report!.throwaway.product, report!.throwaway.version)} and checked` : problems.join("; ") || "the drill failed",
    key,
    rtoSeconds,
    problems: problems.length ? problems : undefined,
    throwaway: report?.throwaway,
    secrets: report?.secrets,
  };
  if (ok) progress.info(`drill: PASSED, RTO ${rtoSeconds!.toFixed(1)}s`);
  else progress.warn(`drill: FAILED: ${outcome.reason}`);
  return outcome;
}

/**
 * The error a backup whose scheduled drill failed ends with (exit 1, stage `drill`), although its
 * snapshot is stored, good and kept; undefined for any other outcome (a skip is reported, not failed).
 */
export function drillFailureOf(outcome: ScheduledDrillOutcome | undefined, url: string): OperationError | undefined {
  if (outcome?.state !== "failed") return undefined;
  return new OperationError(
    `the drill of ${url} failed: ${outcome.reason}. The snapshot is stored and stays listed, restorable and under retention; ` +
      "find out why it does not restore before you need it (docs/restore.md, 'Scheduled drills'), then drill it again with 'vrb drill <key>'",
    { stage: "drill" },
  );
}
