import { chmodSync, createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, IntegrityError, OperationError, VrbError, messageOf } from "../errors.js";
import { silentProgress, type Progress } from "../progress.js";
import { registerSecret } from "../redact.js";
import { parseDuration } from "../schedule.js";
import type { SnapshotStore, StoredSnapshot } from "../snapshot/store.js";
import { verifyStoredSnapshot } from "../snapshot/verify.js";
import { VaultClient, VaultHttpError, loadCaCert, type VaultTlsOptions } from "../vault/client.js";
import {
  autopilotState,
  findActiveNode,
  initialize,
  joinRaft,
  nodeHealth,
  raftConfiguration,
  removePeer,
  sealStatus,
  setAutopilotConfig,
  unseal,
  type AutopilotConfig,
  type NodeHealth,
} from "../vault/operations.js";
import { generateRootStatus, generateRootToken, revokeOwnToken } from "./root-token.js";
import { Deadlines, StepLog, formatMs, type RestoreStep } from "./steps.js";
import { checkRebuildTargets, describeHealth, nodeIdsByAddr, normaliseNodes } from "./targets.js";

export type { RestoreStep } from "./steps.js";

export type RestoreMode = "rebuild" | "in-place";

export interface RestoreOptions {
  mode: RestoreMode;
  /** Target API addresses; a rebuild restores onto nodes[0] first. */
  nodes: string[];
  store: SnapshotStore;
  /** "latest" | "s3://bucket/key" | key */
  snapshot: string;
  /** Which cluster's "latest". */
  cluster?: string;
  /** The ORIGINAL cluster's unseal keys (base64). */
  unsealKeys: string[];
  /** Operator token; without one a short-lived root token is generated from the keys and revoked at the end. */
  token?: string;
  /** in-place: also restore a snapshot of another cluster/keyring (snapshot-force). */
  force?: boolean;
  /** Vault paths that must be readable after the restore. */
  canaries?: string[];
  tls?: VaultTlsOptions;
  progress?: Progress;
  timeoutsMs?: Partial<{ step: number; total: number }>;
}

export interface RestoreNodeReport {
  addr: string;
  nodeId?: string;
  role: string;
  voter?: boolean;
}

export interface RestoreReport {
  ok: boolean;
  mode: RestoreMode;
  snapshot: { bucket: string; key: string; sha256: string; raftIndex: number; takenAt: string };
  steps: RestoreStep[];
  nodes: RestoreNodeReport[];
  autopilot?: { healthy: boolean; failureTolerance: number };
  raftIndex?: number;
  canaries: { path: string; ok: boolean }[];
  durationMs: number;
}

/** An error of a restore that failed part-way: the message says where things stand; `report` has the steps so far. */
export interface RestoreFailure extends VrbError {
  report: RestoreReport;
}

export function restoreReportOf(err: unknown): RestoreReport | undefined {
  return err instanceof VrbError && "report" in err ? (err as RestoreFailure).report : undefined;
}

const DEFAULT_STEP_MS = 120_000;
const DEFAULT_TOTAL_MS = 30 * 60_000;
/** A node that takes this long to load the snapshot must not be reaped by autopilot meanwhile. */
const MIN_DEAD_SERVER_THRESHOLD_MS = 10 * 60_000;

/** Where a restore stands; decides what the operator is told to do next when it fails. */
type Phase = "preflight" | "initialised" | "restored" | "joining" | "verifying" | "restore-sent";

class Run {
  readonly log: StepLog;
  readonly progress: Progress;
  readonly client: VaultClient;
  readonly nodes: string[];
  readonly tmp: string;
  readonly started = Date.now();
  phase: Phase = "preflight";
  snapshot?: StoredSnapshot;
  sha256 = "";
  generatedTokenAccessor?: string;
  generatedToken?: string;
  joined: string[] = [];
  canaries: { path: string; ok: boolean }[] = [];
  autopilot?: RestoreReport["autopilot"];
  raftIndex?: number;
  nodeReports: RestoreNodeReport[] = [];

  constructor(readonly opts: RestoreOptions) {
    this.progress = opts.progress ?? silentProgress;
    this.log = new StepLog(new Deadlines(opts.timeoutsMs?.step ?? DEFAULT_STEP_MS, opts.timeoutsMs?.total ?? DEFAULT_TOTAL_MS), this.progress);
    this.nodes = normaliseNodes(opts.nodes);
    this.client = new VaultClient({ addr: this.nodes[0]!, caCert: opts.tls?.caCert, tlsServerName: opts.tls?.tlsServerName, retries: 1 });
    this.tmp = mkdtempSync(join(tmpdir(), "vrb-restore-"));
    chmodSync(this.tmp, 0o700);
  }

  report(ok: boolean): RestoreReport {
    const s = this.snapshot;
    return {
      ok,
      mode: this.opts.mode,
      snapshot: {
        bucket: s?.bucket ?? this.opts.store.bucket,
        key: s?.key ?? this.opts.snapshot,
        sha256: this.sha256 || s?.manifest?.sha256 || "",
        raftIndex: s?.manifest?.raft.index ?? s?.raftIndex ?? 0,
        takenAt: s ? s.takenAt.toISOString() : "",
      },
      steps: this.log.steps,
      nodes: this.nodeReports,
      ...(this.autopilot ? { autopilot: this.autopilot } : {}),
      ...(this.raftIndex !== undefined ? { raftIndex: this.raftIndex } : {}),
      canaries: this.canaries,
      durationMs: Date.now() - this.started,
    };
  }
}

/**
 * Staged restore (DESIGN.md §4). `rebuild`: empty, uninitialised nodes become the snapshot's
 * cluster, node 1 first, then one node at a time. `in-place`: a live cluster rolls back to the
 * snapshot. Nothing is changed before the snapshot is downloaded and verified and the targets
 * checked; the run ends with proof (voters, autopilot, raft index, canaries) or with an error that
 * says which node is in which state and what to run next (`restoreReportOf(err)` has the steps).
 */
export async function stagedRestore(opts: RestoreOptions): Promise<RestoreReport> {
  validateOptions(opts);
  opts.unsealKeys.forEach(registerSecret);
  registerSecret(opts.token);
  const run = new Run(opts);
  try {
    if (opts.mode === "rebuild") await rebuild(run);
    else await inPlace(run);
    await revokeGeneratedToken(run);
    const report = run.report(true);
    run.progress.info(`restore finished in ${formatMs(report.durationMs)}: ${report.nodes.length} node(s), raft index ${report.raftIndex ?? "?"}`);
    return report;
  } catch (err) {
    await revokeGeneratedToken(run).catch(() => undefined);
    throw await failure(run, err);
  } finally {
    rmSync(run.tmp, { recursive: true, force: true });
    await run.client.close();
  }
}

function validateOptions(opts: RestoreOptions): void {
  if (opts.mode !== "rebuild" && opts.mode !== "in-place") {
    throw new ConfigError(`mode '${String(opts.mode)}' is not one of rebuild, in-place`, { field: "mode" });
  }
  if (!opts.snapshot) throw new ConfigError("no snapshot given: use 'latest', s3://BUCKET/KEY or a key", { field: "snapshot" });
  if (opts.mode === "rebuild" && opts.unsealKeys.length === 0) {
    throw new ConfigError("a rebuild needs the original cluster's unseal keys: give --unseal-keys-file", { field: "unsealKeys" });
  }
  if (opts.mode === "in-place" && opts.unsealKeys.length === 0 && !opts.token) {
    throw new ConfigError("an in-place restore needs a token (VAULT_TOKEN) or the unseal keys (--unseal-keys-file) to generate one", { field: "token" });
  }
  for (const c of opts.canaries ?? []) {
    if (!c || c.startsWith("/")) throw new ConfigError(`canary path '${c}' must be a Vault API path like secret/data/dr-canary`, { field: "verify.canaries" });
  }
}

// ---------------------------------------------------------------------------------------------
// Preflight: nothing on any node changes here.

async function resolveSnapshot(run: Run): Promise<StoredSnapshot> {
  return run.log.run("resolve snapshot", undefined, async (clock) => {
    const s = await run.opts.store.resolve(run.opts.snapshot, run.opts.cluster);
    if (s.status !== "good" || !s.manifest) {
      throw new IntegrityError(`s3://${s.bucket}/${s.key} is not a good snapshot (${s.problem ?? s.status}); it cannot be restored`, { stage: "preflight" });
    }
    run.snapshot = s;
    clock.detail = `s3://${s.bucket}/${s.key} (raft index ${s.manifest.raft.index}, taken ${s.manifest.takenAt}, Vault ${s.manifest.vault.version})`;
    return s;
  });
}

async function downloadAndVerify(run: Run, snapshot: StoredSnapshot): Promise<string> {
  const file = join(run.tmp, "snapshot.snap");
  await run.log.run("download and verify snapshot", undefined, async (clock) => {
    const store = snapshot.bucket === run.opts.store.bucket ? run.opts.store : undefined;
    if (!store) throw new ConfigError(`snapshot bucket ${snapshot.bucket} differs from the store's bucket ${run.opts.store.bucket}`, { field: "snapshot" });
    const v = await verifyStoredSnapshot(store, snapshot, { progress: run.progress, saveTo: file });
    run.sha256 = v.sha256;
    clock.detail = `${v.bytes} bytes, sha256 ${v.sha256.slice(0, 12)}..., ${v.archive.entries} archive entries checked`;
  });
  return file;
}

// ---------------------------------------------------------------------------------------------
// Rebuild

async function rebuild(run: Run): Promise<void> {
  const { log, client, nodes } = run;
  const keys = run.opts.unsealKeys;
  const n1 = nodes[0]!;
  const snapshot = await resolveSnapshot(run);
  const manifest = snapshot.manifest!;
  await log.run("check target nodes", undefined, async (clock) => {
    const health = await checkRebuildTargets(client, nodes, manifest.vault.version);
    clock.detail = `${health.length} node(s) reachable and uninitialised`;
  });
  if (!run.opts.token) {
    await log.run("check generate-root is enabled", n1, async (clock) => {
      // Probing is read-only; a disabled endpoint is a config error found before any node changes.
      await generateRootStatus(client, n1).catch((err: unknown) => {
        if (err instanceof ConfigError) throw err;
      });
      clock.detail = "a short-lived root token can be made from the unseal keys";
    });
  }
  if (run.opts.force) run.progress.info("--force has no effect on a rebuild: its targets must be uninitialised");
  const file = await downloadAndVerify(run, snapshot);

  // From here on nodes change.
  // The throwaway keyring has as many shares as we hold original keys, all of them needed: after the
  // restore the node keeps this seal shape in memory until it restarts (seen on OpenBao 2.x), and k
  // original shares (k >= the original threshold) still combine to the original key under it.
  const shape = keys.length;
  const temp = await log.run("initialise node 1 with a throwaway keyring", n1, async (c) => {
    c.detail = `${shape} share(s), threshold ${shape}`;
    return c.vault(initialize(client, { kind: "shamir", shares: shape, threshold: shape }));
  });
  run.phase = "initialised";
  await log.run("unseal node 1 (throwaway keyring)", n1, (c) => c.vault(unseal(client, temp.unsealKeysB64, n1, { timeoutMs: c.timeoutMs() })));
  client.setToken(temp.rootToken);
  await waitRole(log, client, n1, ["active"], "wait until node 1 is active");

  await log.run("restore snapshot (snapshot-force)", n1, (c) => c.vault(uploadSnapshot(client, "sys/storage/raft/snapshot-force", file, c.timeoutMs())));
  run.phase = "restored";
  // The throwaway keyring and its root token are gone with the restore.
  client.setToken(undefined);
  await log.run("wait until node 1 seals itself", n1, (c) =>
    c.until(`${n1} to apply the snapshot and seal itself`, async () => ((await sealStatus(client)).sealed ? true : undefined)),
  );
  await log.run("unseal node 1 with the original keys", n1, (c) => c.vault(unseal(client, keys, n1, { timeoutMs: c.timeoutMs() })));
  await waitRole(log, client, n1, ["active"], "wait until node 1 is active");
  await obtainToken(run, client);
  await log.run("remove stale peers of the old cluster", n1, async (clock) => {
    const config = await raftConfiguration(client);
    const stale = config.servers.filter((s) => !s.leader);
    for (const s of stale) await clock.vault(removePeer(client, s.node_id));
    clock.detail = stale.length ? `removed ${stale.map((s) => `${s.node_id} (${s.address})`).join(", ")}` : "none";
  });
  await ensureAutopilotPatience(run);

  run.phase = "joining";
  for (const [i, addr] of nodes.slice(1).entries()) {
    const c = client.forNode(addr);
    await log.run(`join node ${i + 2} to node 1`, addr, (clock) => clock.vault(joinRaft(c, n1, loadCaCert(run.opts.tls?.caCert))));
    await log.run(`unseal node ${i + 2} with the original keys`, addr, (clock) => clock.vault(unseal(c, keys, addr, { timeoutMs: clock.timeoutMs() })));
    await waitRole(log, c, addr, ["standby"], `wait until node ${i + 2} is a standby`);
    run.joined.push(addr);
  }
  run.phase = "verifying";
  await verifyCluster(run, client);
}

// ---------------------------------------------------------------------------------------------
// In-place rollback

async function inPlace(run: Run): Promise<void> {
  const { log, nodes, opts } = run;
  const snapshot = await resolveSnapshot(run);
  const manifest = snapshot.manifest!;
  const active = await log.run("find the active node", undefined, async (clock) => {
    const found = await findActiveNode(run.client, nodes);
    const activeHealth = found.health.find((h) => h.addr === found.addr)!;
    const down = found.health.filter((h) => h.role !== "active" && h.role !== "standby");
    if (down.length) {
      throw new OperationError(`every node must be unsealed for an in-place restore; found ${down.map(describeHealth).join("; ")}`, { stage: "preflight" });
    }
    if (manifest.vault.clusterId && activeHealth.clusterId && manifest.vault.clusterId !== activeHealth.clusterId && !opts.force) {
      throw new ConfigError(
        `refusing: the snapshot is of cluster id ${manifest.vault.clusterId} but ${found.addr} belongs to cluster id ${activeHealth.clusterId}, ` +
          `whose data the restore would replace. Add --force to restore it anyway (snapshot-force; the cluster seals and needs the snapshot's unseal keys). Nothing was changed.`,
        { field: "force", stage: "preflight" },
      );
    }
    clock.detail = `${found.addr} is active (${found.health.length} node(s))`;
    return found.addr;
  });
  const client = run.client.forNode(active);
  if (opts.force && opts.unsealKeys.length === 0) {
    throw new ConfigError("--force restores with snapshot-force, after which the cluster is sealed: give --unseal-keys-file", { field: "unsealKeys" });
  }
  await obtainToken(run, client);
  const before = await raftConfiguration(client);
  const indexBefore = await appliedIndex(client);
  const file = await downloadAndVerify(run, snapshot);

  const path = opts.force ? "sys/storage/raft/snapshot-force" : "sys/storage/raft/snapshot";
  run.phase = "restore-sent";
  await log.run(`restore snapshot (${path.split("/").pop()})`, active, (c) => c.vault(uploadSnapshot(client, path, file, c.timeoutMs())));
  if (opts.force) {
    client.setToken(undefined);
    for (const addr of nodes) {
      const c = client.forNode(addr);
      await log.run("wait until sealed by the restore", addr, (clock) =>
        clock.until(`${addr} to apply the snapshot and seal itself`, async () => ((await sealStatus(c)).sealed ? true : undefined)),
      );
    }
    for (const addr of nodes) {
      const c = client.forNode(addr);
      await log.run("unseal with the snapshot's keys", addr, (clock) => clock.vault(unseal(c, opts.unsealKeys, addr, { timeoutMs: clock.timeoutMs() })));
    }
  }
  const leader = await log.run("wait until the cluster serves the restored data", undefined, (c) =>
    c.until("an active node with the snapshot applied", async () => {
      const found = await findActiveNode(client, nodes).catch(() => undefined);
      if (!found) return undefined;
      const idx = await appliedIndex(client.forNode(found.addr));
      return opts.force || idx > indexBefore ? found.addr : undefined;
    }),
  );
  const verifyClient = run.client.forNode(leader);
  // Tokens made after the snapshot was taken (ours included) no longer exist: get one that does.
  if (!(await tokenWorks(verifyClient, run))) {
    run.generatedToken = undefined;
    run.generatedTokenAccessor = undefined;
    verifyClient.setToken(undefined);
    await obtainToken(run, verifyClient, "the token is not in the restored data");
  }
  run.phase = "verifying";
  await verifyCluster(run, verifyClient, before.servers.filter((s) => s.voter).length);
}

// ---------------------------------------------------------------------------------------------
// Shared steps

async function waitRole(log: StepLog, client: VaultClient, addr: string, roles: NodeHealth["role"][], step: string): Promise<NodeHealth> {
  return log.run(step, addr, (c) =>
    c.until(`${addr} to be ${roles.join(" or ")}`, async () => {
      const h = await nodeHealth(client);
      return roles.includes(h.role) ? h : undefined;
    }),
  );
}

/** POSTs the verified snapshot file as a stream; no body timeout (a large snapshot takes what it takes). */
async function uploadSnapshot(client: VaultClient, path: string, file: string, headersTimeoutMs: number): Promise<void> {
  const bytes = statSync(file).size;
  const res = await client.open("POST", path, {
    body: createReadStream(file, { highWaterMark: 1 << 20 }),
    headers: { "content-type": "application/octet-stream", "content-length": String(bytes) },
    headersTimeout: headersTimeoutMs,
    bodyTimeout: 0,
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) {
    let errors: string[] = [];
    try {
      errors = ((JSON.parse(text) as { errors?: unknown[] }).errors ?? []).map(String);
    } catch {
      errors = text ? [text.slice(0, 200)] : [];
    }
    throw new VaultHttpError(client.addr, "POST", `/v1/${path}`, res.statusCode, errors);
  }
}

async function appliedIndex(client: VaultClient): Promise<number> {
  const r = await client.get<{ raft_applied_index?: number; raft_committed_index?: number }>("sys/leader", { anonymous: true });
  return r.body.raft_applied_index ?? r.body.raft_committed_index ?? 0;
}

async function tokenWorks(client: VaultClient, run: Run): Promise<boolean> {
  if (!client.hasToken()) return false;
  try {
    await client.get("auth/token/lookup-self");
    return true;
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 403) return false;
    run.progress.warn(`token check failed: ${messageOf(err)}`);
    return false;
  }
}

/** The operator's token, or a root token generated from the unseal keys (revoked at the end). */
async function obtainToken(run: Run, client: VaultClient, why?: string): Promise<void> {
  if (run.opts.token && !why) {
    client.setToken(run.opts.token);
    run.client.setToken(run.opts.token);
    if (await tokenWorks(client, run)) {
      run.log.skip("generate root token", "operator token given");
      return;
    }
    if (run.opts.unsealKeys.length === 0) {
      throw new ConfigError(`the given token is not valid on ${client.addr} (lookup-self refused); give a valid VAULT_TOKEN or the unseal keys`, { field: "token" });
    }
    run.progress.warn("the given token is not valid on the restored cluster; generating a short-lived root token from the unseal keys");
  }
  if (run.opts.unsealKeys.length === 0) {
    throw new OperationError(`no usable token after the restore (${why ?? "none given"}) and no unseal keys to generate one`, { stage: "generate root token" });
  }
  const token = await run.log.run("generate root token (OTP flow)", client.addr, async (c) => {
    const t = await c.vault(generateRootToken(client, run.opts.unsealKeys, client.addr));
    c.detail = why ? `short-lived; ${why}` : "short-lived; revoked at the end";
    return t;
  });
  run.generatedToken = token;
  client.setToken(token);
  run.client.setToken(token);
  const self = await client.get<{ data: { accessor: string } }>("auth/token/lookup-self");
  run.generatedTokenAccessor = self.body.data.accessor;
}

async function revokeGeneratedToken(run: Run): Promise<void> {
  const token = run.generatedToken;
  if (!token) return;
  const c = run.client.forNode(run.nodes[0]!);
  c.setToken(token);
  await run.log.run("revoke generated root token", run.nodes[0], async (clock) => {
    await clock.vault(revokeOwnToken(c));
    // Proof, not hope: the token must now be refused.
    if (await tokenWorks(c, run)) throw new OperationError(`the generated root token (accessor ${run.generatedTokenAccessor}) still works after revoke-self`);
    clock.detail = `accessor ${run.generatedTokenAccessor} revoked; lookup-self now refused`;
  });
  run.generatedToken = undefined;
}

/** dead_server_last_contact_threshold must outlast a node loading the snapshot, or autopilot may reap it. */
async function ensureAutopilotPatience(run: Run): Promise<void> {
  await run.log.run("check autopilot dead-server threshold", run.nodes[0], async (clock) => {
    const current = (await run.client.get<{ data: AutopilotConfig }>("sys/storage/raft/autopilot/configuration")).body.data;
    const applyMs = run.log.steps.filter((s) => s.step.startsWith("restore snapshot") || s.step.includes("seals itself")).reduce((a, s) => a + s.durationMs, 0);
    const needMs = Math.max(MIN_DEAD_SERVER_THRESHOLD_MS, 10 * applyMs);
    let haveMs = 0;
    try {
      haveMs = parseDuration(current.dead_server_last_contact_threshold ?? "0s");
    } catch {
      haveMs = 0;
    }
    if (haveMs >= needMs) {
      clock.detail = `${current.dead_server_last_contact_threshold} is enough`;
      return;
    }
    const value = `${Math.ceil(needMs / 60_000)}m`;
    await clock.vault(setAutopilotConfig(run.client, { ...current, dead_server_last_contact_threshold: value }));
    clock.detail = `raised from ${current.dead_server_last_contact_threshold ?? "unset"} to ${value}`;
  });
}

/** The proof: every node a voter, autopilot healthy with the expected failure tolerance, raft index, canaries. */
async function verifyCluster(run: Run, client: VaultClient, expectedVoters = run.nodes.length): Promise<void> {
  const { log, opts } = run;
  const manifest = run.snapshot!.manifest!;
  const tolerance = Math.floor((expectedVoters - 1) / 2);
  await log.run("verify voters and autopilot", client.addr, async (clock) => {
    const ap = await clock.until(`${expectedVoters} voters, autopilot healthy, failure tolerance ${tolerance}`, async () => {
      const config = await raftConfiguration(client);
      if (config.servers.filter((s) => s.voter).length < expectedVoters) return undefined;
      const state = await autopilotState(client);
      return state.healthy && state.failure_tolerance >= tolerance ? state : undefined;
    }, 250);
    run.autopilot = { healthy: ap.healthy, failureTolerance: ap.failure_tolerance };
    clock.detail = `${ap.voters.length} voters, failure tolerance ${ap.failure_tolerance}`;
  });
  await log.run("verify raft index", client.addr, async (clock) => {
    const idx = await appliedIndex(client);
    run.raftIndex = idx;
    if (idx < manifest.raft.index) throw new OperationError(`raft index ${idx} is below the snapshot's ${manifest.raft.index}: the snapshot was not applied`);
    clock.detail = `${idx} >= snapshot's ${manifest.raft.index}`;
  });
  const ids = await nodeIdsByAddr(client).catch(() => new Map<string, { nodeId: string; voter: boolean }>());
  run.nodeReports = await Promise.all(
    run.nodes.map(async (addr) => {
      const h = await nodeHealth(client.forNode(addr));
      const id = ids.get(addr);
      return { addr, role: h.role, ...(id ? { nodeId: id.nodeId, voter: id.voter } : {}) };
    }),
  );
  const canaries = opts.canaries ?? [];
  if (canaries.length === 0) {
    log.skip("read canaries", "no canary paths configured");
    return;
  }
  await log.run("read canaries", client.addr, async (clock) => {
    run.canaries = await Promise.all(
      canaries.map(async (path) => ({
        path,
        ok: await client.get(path).then(
          () => true,
          () => false,
        ),
      })),
    );
    const bad = run.canaries.filter((c) => !c.ok).map((c) => c.path);
    if (bad.length) throw new OperationError(`canary path(s) not readable after the restore: ${bad.join(", ")}`);
    clock.detail = `${canaries.length} readable`;
  });
}

// ---------------------------------------------------------------------------------------------
// Failure: say where every node stands and what to run next.

async function failure(run: Run, err: unknown): Promise<VrbError> {
  const report = run.report(false);
  const health = await Promise.all(run.nodes.map((n) => nodeHealth(run.client.forNode(n))));
  const states = health.map((h) => `  ${describeHealth(h)}`).join("\n");
  const n1 = run.nodes[0]!;
  const rest = run.nodes.slice(1).filter((n) => !run.joined.includes(n));
  const joinCmds = rest.map((n) => `bao operator raft join -address=${n} ${n1} && bao operator unseal -address=${n} (repeat to the threshold)`).join("; ");
  const next: Record<Phase, string> = {
    preflight: "nothing was changed on any node; fix the cause above and run the same command again.",
    initialised:
      `${n1} was initialised with a throwaway keyring and holds none of the snapshot's data: stop it, delete its raft data directory, ` +
      `start it (local environment: vrb local stop-node <id> --wipe && vrb local start-node <id>), then run the same command again.`,
    restored:
      `${n1} holds the restored snapshot. Unseal it with the ORIGINAL cluster's keys (bao operator unseal -address=${n1}, to the threshold)` +
      (rest.length ? `, then join the others one at a time: ${joinCmds}` : "") +
      `. Or wipe ${n1} and run the same command again.`,
    joining:
      `${n1} serves the restored data. ` +
      (rest.length ? `Not yet joined: ${rest.join(", ")}; for each: ${joinCmds}. ` : "") +
      `Then check: bao operator raft list-peers -address=${n1}.`,
    verifying: `every node has been restored, but the proof failed; inspect bao operator raft list-peers and bao operator raft autopilot state on ${n1} (it may still be converging).`,
    "restore-sent": `the restore was sent to the active node; check bao operator raft list-peers and the canaries, unseal any sealed node with the snapshot's keys, then run the same command again if the data is not the snapshot's.`,
  };
  const tokenNote = run.generatedToken
    ? `\nA generated root token could not be revoked: revoke it with 'bao token revoke -accessor ${run.generatedTokenAccessor}'.`
    : "";
  // Node 1 may already be unsealed and serving (e.g. the token step failed): advise from what it is now.
  const n1Serving = ["active", "standby"].includes(health[0]?.role ?? "");
  const advice = run.phase === "restored" && n1Serving ? next.joining : next[run.phase];
  const message = `restore (${run.opts.mode}) failed at ${run.phase === "preflight" ? "preflight" : `phase '${run.phase}'`}: ${messageOf(err)}\nnodes now:\n${states}\nnext: ${advice}${tokenNote}`;
  const stage = err instanceof VrbError ? err.stage : undefined;
  const out: VrbError =
    err instanceof ConfigError
      ? new ConfigError(message, { field: err.field, stage, cause: err })
      : err instanceof IntegrityError
        ? new IntegrityError(message, { stage, cause: err })
        : new OperationError(message, { stage, cause: err });
  return Object.assign(out, { report });
}
