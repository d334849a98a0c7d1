import { ConfigError, OperationError } from "../errors.js";
import { parseDuration } from "../schedule.js";
import { loadCaCert, type VaultClient } from "../vault/client.js";
import { appliedIndex, initialize, sealStatus, unseal } from "../vault/operations.js";
import { joinRaft, raftConfiguration, removePeer, setAutopilotConfig, type AutopilotConfig } from "../vault/raft-peers.js";
import { checkKeysForPlan, checkSeal, downloadAndVerify, resolveSnapshot } from "./preflight.js";
import { planReload, reloadNode1, restartNode1, type ReloadRoute } from "./reload.js";
import { checkRestartCommand } from "./restart.js";
import { checkHoldsSnapshot, mayStillBeApplying, planResume, surveyTargets, targetFacts, type ResumePlan } from "./resume.js";
import type { RestoreRun } from "./restore-run.js";
import { waitRole } from "./wait-role.js";
import type { WaitStatus } from "./steps.js";
import { uploadSnapshot } from "./snapshot-upload.js";
import { nodeIdsByAddr } from "./target-health.js";
import { GenerateRootRefused, generateRootAdvice, generateRootStatus } from "./root-token.js";
import { obtainToken, tokenWorks } from "./token.js";
import { verifyRestore } from "./verify-restored.js";

/** How long a re-run waits for an active node 1 with the throwaway keyring's shape to seal itself (mayStillBeApplying). */
const APPLY_GRACE_MS = 30_000;

/** A node that takes this long to load the snapshot must not be reaped by autopilot meanwhile. */
const MIN_DEAD_SERVER_THRESHOLD_MS = 10 * 60_000;

/**
 * Rebuild: empty, uninitialised nodes become the snapshot's cluster. Everything that can stop the
 * restore is checked before node 1 changes; node 1 takes the snapshot, then the others join one
 * at a time. A token is used where one works, never required. Run again after an interruption,
 * it continues from what the nodes report (engine/restore/resume.ts).
 */
export async function rebuild(run: RestoreRun): Promise<void> {
  const { log, client, nodes } = run;
  checkRestartCommand(run.opts.restartCommand, "restartCommand");
  const snapshot = await resolveSnapshot(run);
  const manifest = snapshot.manifest!;
  const facts = await log.run("check target nodes", undefined, async (clock) => {
    const found = await surveyTargets(client, nodes, manifest.vault.version);
    const empty = found.filter((f) => f.state === "uninitialized").length;
    clock.detail = `${found.length} node(s) reachable, ${empty === found.length ? "all uninitialised" : `${found.length - empty} initialised`}`;
    return found;
  });
  const plan = await checkSeal(run, nodes);
  checkKeysForPlan(run, plan);
  // A Shamir node 1 that took the snapshot of an interrupted run applies it before it seals
  // itself: meanwhile it answers as the throwaway cluster's active node, or not at all (sys/health
  // 500). Seen when the same command ran again within seconds of a SIGKILL: wait for it to settle,
  // or it is taken for another cluster. An active node 1 is given APPLY_GRACE_MS: a throwaway
  // keyring whose run was stopped before the snapshot was sent never seals, and is refused below.
  if (plan.kind === "shamir" && mayStillBeApplying(facts, manifest, run.keys.length)) {
    const n1 = nodes[0]!;
    facts[0] = await log.run("wait until node 1 settles (it may still be applying the interrupted run's snapshot)", n1, (c) => {
      // Within the step's own deadline, which a short step timeout makes shorter.
      const graceMs = Math.min(APPLY_GRACE_MS, c.timeoutMs() / 2);
      const giveUp = Date.now() + graceMs;
      return c.until(`${n1} to seal itself or answer sys/health`, async () => {
        const f = await targetFacts(client, n1, 1);
        if (f.state === "unsettled") return undefined;
        if (f.state === "active" && mayStillBeApplying([f, ...facts.slice(1)], manifest, run.keys.length)) {
          if (Date.now() < giveUp) return undefined;
          run.progress.warn(
            `node 1 did not seal itself within ${Math.round(graceMs / 1000)} s: it holds the throwaway keyring of a run stopped before the snapshot was applied, or is still applying a large one (then run again once it is sealed)`,
          );
        }
        return f;
      });
    });
  }
  // Auto-unseal: how node 1 will load the restored keys, settled before anything changes.
  let reload: ReloadRoute | undefined;
  let noReload: unknown;
  if (plan.kind === "auto") {
    try {
      reload = planReload(run, facts[0]!.health);
    } catch (err) {
      noReload = err;
    }
  }
  const resume = facts.some((f) => f.state !== "uninitialized")
    ? await log.run("decide how to continue an interrupted rebuild", undefined, async (clock) => {
        const r = planResume(facts, manifest, plan, { unsealAuto: Boolean(reload) }, run.names)!;
        for (const line of r.lines) run.progress.info(line);
        clock.detail = r.lines.join("; ");
        return r;
      })
    : undefined;
  if (noReload && resume?.node1 !== "serving") throw noReload;
  if (run.opts.force) run.progress.info(`${run.names.force} has no effect on a rebuild: its targets must be uninitialised`);
  if (plan.kind === "shamir" && run.opts.restartCommand) {
    run.progress.info(`${run.names.restartCommand} is not needed for a Shamir seal (node 1 seals itself after the restore and is unsealed with the keys): not used`);
  }
  const file = await downloadAndVerify(run, snapshot);
  run.sizeDeadlinesTo(file);

  // From here on nodes change.
  if (resume) await continueNode1(run, resume, reload);
  else if (plan.kind === "shamir") {
    await restoreFirstNodeShamir(run, file);
    await obtainToken(run, client);
  } else {
    await restoreFirstNodeAuto(run, file, reload!);
  }
  if (run.token !== "none") {
    await removeStalePeers(run);
    await ensureAutopilotPatience(run);
  } else {
    const target = run.baoTarget(nodes[0]!);
    run.notVerified.push(
      {
        check: "stale peers of the old cluster",
        why: "needs a token",
        command: `${run.withOriginalToken(`${run.cli} operator raft list-peers ${target}`)} (remove any not in ${run.names.nodes}: ${run.cli} operator raft remove-peer ${target} <id>)`,
      },
      {
        check: "autopilot dead-server threshold",
        why: "needs a token",
        command: `${run.withOriginalToken(`${run.cli} read ${target} sys/storage/raft/autopilot/configuration`)} (dead_server_last_contact_threshold should outlast loading the snapshot)`,
      },
    );
  }

  run.phase = "joining";
  for (const [i, addr] of nodes.slice(1).entries()) {
    if (run.joined.includes(addr)) log.skip(`join node ${i + 2} to node 1`, "already a standby of node 1", addr);
    else await joinNode(run, addr, i + 2, { joinedBefore: resume?.unseal.includes(addr) });
  }
  run.phase = "verifying";
  await verifyRestore(run, client);
}

/**
 * Shamir: node 1 gets a throwaway keyring, takes the snapshot with snapshot-force, seals itself,
 * and is unsealed with the ORIGINAL keys. The throwaway keyring has as many shares as we hold
 * original keys, all of them needed: after the restore the node keeps this seal shape in memory
 * until it restarts (seen on OpenBao 2.x), and k original shares (k >= the original threshold)
 * still combine to the original key under it.
 */
async function restoreFirstNodeShamir(run: RestoreRun, file: string): Promise<void> {
  const { log, client } = run;
  const n1 = run.nodes[0]!;
  const shape = run.keys.length;
  const temp = await log.run("initialise node 1 with a throwaway keyring", n1, async (c) => {
    c.detail = `${shape} share(s), threshold ${shape}`;
    return c.vault(initialize(client, { kind: "shamir", shares: shape, threshold: shape }));
  });
  run.phase = "initialised";
  await log.run("unseal node 1 (throwaway keyring)", n1, (c) => c.vault(unseal(client, temp.unsealKeysB64, n1, { timeoutMs: c.timeoutMs() })));
  client.setToken(temp.rootToken);
  await waitRole(log, client, n1, ["active"], "wait until node 1 is active");
  await uploadSnapshot(run, client, n1, file, true);
  run.phase = "restored";
  // The throwaway keyring and its root token are gone with the restore.
  client.setToken(undefined);
  await log.run(
    "wait until node 1 seals itself",
    n1,
    (c) =>
      c.until(`${n1} to apply the snapshot and seal itself`, async () => ((await sealStatus(client)).sealed ? true : undefined), 100, {
        status: async () => `node 1 still unsealed at raft index ${await appliedIndex(client)}, applying the snapshot (index ${run.manifest!.raft.index})`,
      }),
    { sized: true },
  );
  await log.run("unseal node 1 with the original keys", n1, (c) => c.vault(unseal(client, run.keys, n1, { timeoutMs: c.timeoutMs() })), { sized: true, completes: true });
  await waitRole(log, client, n1, ["active"], "wait until node 1 is active", { sized: true });
}

/**
 * Auto-unseal: node 1 is initialised with throwaway recovery keys and unseals itself; after
 * snapshot-force the same seal opens the snapshot's keyring and the node stays unsealed. It keeps
 * the throwaway cluster's raft TLS keys in memory, though (seen on OpenBao 2.7.2): a node joining
 * it, or restarting, gets the restored keys from storage and the two cannot talk. Sealing node 1
 * and unsealing it with the ORIGINAL recovery keys reloads everything from the restored data.
 * Sealing needs a token, so its source is settled before the snapshot is applied.
 */
async function restoreFirstNodeAuto(run: RestoreRun, file: string, reload: ReloadRoute): Promise<void> {
  const { log, client } = run;
  const n1 = run.nodes[0]!;
  const sealType = run.seal!.type;
  const temp = await log.run("initialise node 1 (throwaway recovery keys)", n1, async (c) => {
    c.detail = `${sealType} seal; 1 recovery share, discarded after the restore`;
    return c.vault(initialize(client, { kind: "recovery", shares: 1, threshold: 1 }));
  });
  run.phase = "initialised";
  await waitRole(log, client, n1, ["active"], `wait until node 1 unseals itself (${sealType}) and is active`);
  // A restart needs no token; the other routes are checked once more now that node 1 can tell.
  if (reload.kind !== "restart") await checkTokenSource(run);
  const throwaway = client.forNode(n1);
  throwaway.setToken(temp.rootToken);
  await uploadSnapshot(run, throwaway, n1, file, true);
  run.phase = "restored";
  await waitForAutoRestore(run, throwaway);
  await throwaway.close();
  await reloadNode1(run, reload);
}

/**
 * A re-run: node 1 already holds the snapshot (resume.ts decided from what it reports). It is
 * opened if sealed, and proven to hold the snapshot's cluster; reloaded if an auto-unseal node may
 * still hold the throwaway keys; the restore itself is not repeated.
 */
async function continueNode1(run: RestoreRun, resume: ResumePlan, reload: ReloadRoute | undefined): Promise<void> {
  const { log, client } = run;
  const n1 = run.nodes[0]!;
  log.skip("restore snapshot (snapshot-force)", "node 1 already holds the snapshot: an interrupted run applied it", n1);
  run.joined.push(...resume.joined);
  if (resume.node1 === "unseal") {
    if (run.seal?.kind === "auto" && reload?.kind === "restart") await restartNode1(run, reload.command);
    else {
      const what = run.seal?.kind === "auto" ? "the original recovery keys" : "the original keys";
      await log.run(
        `unseal node 1 with ${what}`,
        n1,
        async (c) => {
          try {
            await c.vault(unseal(client, run.keys, n1, { timeoutMs: c.timeoutMs() }));
          } catch (err) {
            if (!(err instanceof OperationError)) throw err;
            throw new ConfigError(
              `node 1 (${n1}) is sealed and ${what} do not open it (${err.message}): it holds another keyring, e.g. the throwaway keyring of a rebuild ` +
                `interrupted before the snapshot was applied, or another cluster. Wipe it (stop, delete its raft data directory, start) and ${run.names.rerun}. Nothing was changed.`,
              { field: "nodes", stage: "preflight" },
            );
          }
        },
        { sized: true, completes: true },
      );
      await waitRole(log, client, n1, ["active"], "wait until node 1 is active", { sized: true });
    }
    checkHoldsSnapshot(await targetFacts(client, n1, 1), run.manifest!, run.names);
  }
  run.phase = "restored";
  if (resume.node1 === "reload") await reloadNode1(run, reload!);
  else await obtainToken(run, client);
}

/**
 * Before the snapshot is applied: a token must be had afterwards. Given (VAULT_TOKEN or the keys
 * file's root token) it can only be tried later; otherwise generate-root must be served, which an
 * initialised node tells (OpenBao >= 2.5.3 disables it by default).
 */
async function checkTokenSource(run: RestoreRun): Promise<void> {
  await run.log.run("check a token can be had after the restore", run.nodes[0], async (clock) => {
    if (run.opts.token || run.opts.keys?.rootToken) {
      clock.detail = run.opts.token ? "a token was given (VAULT_TOKEN); tried after the restore" : "the keys file has the init root token; tried after the restore";
      return;
    }
    try {
      await generateRootStatus(run.client);
    } catch (err) {
      if (err instanceof ConfigError) {
        const advice = generateRootAdvice(err instanceof GenerateRootRefused ? err.product : undefined);
        throw new ConfigError(
          `the ${run.seal!.type}-sealed targets do not serve generate-root (${advice.why}) and no token of the original cluster was given. ` +
            `After the restore node 1 must be sealed once to load the restored cluster's keys, which needs a token: give one in VAULT_TOKEN ` +
            `(or the init JSON with its root_token as the keys file), or enable generate-root on the targets for the restore ` +
            `(listener stanza; ${advice.setting}). The snapshot was not applied.`,
          { field: "token", stage: "preflight" },
        );
      }
      throw err;
    }
    clock.detail = "generate-root is served: a short-lived root token will be made from the recovery keys";
  });
}

/** Until the restore is applied: the snapshot's raft index reached and the throwaway root token gone. */
async function waitForAutoRestore(run: RestoreRun, throwaway: VaultClient): Promise<void> {
  const { client } = run;
  const n1 = run.nodes[0]!;
  const sealType = run.seal!.type;
  const target = run.manifest!.raft.index;
  let sealedSince: number | undefined;
  await run.log.run(
    "wait until node 1 serves the snapshot",
    n1,
    async (c) => {
      const outcome = await c.until(
        `${n1} to apply the snapshot (raft index >= ${target}) with its ${sealType} seal`,
        async () => {
          const s = await sealStatus(client);
          if (s.sealed) {
            sealedSince ??= Date.now();
            // A node whose seal cannot decrypt the restored keyring stays sealed: say so instead of waiting out the deadline.
            return Date.now() - sealedSince > 15_000 ? ("stays sealed" as const) : undefined;
          }
          sealedSince = undefined;
          const idx = await appliedIndex(client);
          // The throwaway root token died with the restore: proof the node's data was replaced.
          const oldTokenGone = !(await tokenWorks(throwaway));
          return idx >= target && oldTokenGone ? ("applied" as const) : undefined;
        },
        100,
        { status: async () => `node 1 applied raft index ${await appliedIndex(client)} of the snapshot's ${target}` },
      );
      if (outcome === "stays sealed") {
        throw new OperationError(
          `${n1} sealed itself after the restore and its ${sealType} seal does not unseal it: the seal cannot decrypt the snapshot's keyring. ` +
            `The target nodes must use the same ${sealType} key as the original cluster (same transit key / KMS key).`,
          { stage: "restore snapshot" },
        );
      }
    },
    { sized: true },
  );
}

/** `joinedBefore`: an interrupted run joined it and it is still sealed (Shamir): only the unseal is left. */
async function joinNode(run: RestoreRun, addr: string, n: number, opts: { joinedBefore?: boolean } = {}): Promise<void> {
  const { log } = run;
  const n1 = run.nodes[0]!;
  const c = run.client.forNode(addr);
  // A joining node receives the whole snapshot from the leader over Raft and installs it before it
  // unseals: these waits grow with the snapshot, and say how far the node has got.
  const catchUp: WaitStatus = {
    status: async () => {
      const leader = await appliedIndex(run.client.forNode(n1)).catch(() => undefined);
      const mine = await appliedIndex(c).catch(() => undefined);
      const at = mine ? `at raft index ${mine}` : "not serving yet (receiving and installing the snapshot)";
      return `node ${n} ${at}; node 1 at ${leader ?? "?"}`;
    },
  };
  if (opts.joinedBefore) log.skip(`join node ${n} to node 1`, "joined by an interrupted run; sealed", addr);
  else await log.run(`join node ${n} to node 1`, addr, (clock) => clock.vault(joinRaft(c, n1, loadCaCert(run.opts.tls?.caCert))), { sized: true });
  if (run.seal?.kind === "auto") {
    await waitRole(log, c, addr, ["standby"], `wait until node ${n} unseals itself (${run.seal.type}) and is a standby`, { sized: true, ...catchUp });
  } else {
    await log.run(`unseal node ${n} with the original keys`, addr, (clock) => clock.vault(unseal(c, run.keys, addr, { timeoutMs: clock.timeoutMs() }), catchUp), {
      sized: true,
      completes: true,
    });
    await waitRole(log, c, addr, ["standby"], `wait until node ${n} is a standby`, { sized: true, ...catchUp });
  }
  run.joined.push(addr);
}

async function removeStalePeers(run: RestoreRun): Promise<void> {
  await run.log.run("remove stale peers of the old cluster", run.nodes[0], async (clock) => {
    const config = await raftConfiguration(run.client);
    // Targets an interrupted run already joined are members, not stale peers.
    const members = run.joined.length ? [...(await nodeIdsByAddr(run.client)).entries()].filter(([a]) => run.joined.includes(a)).map(([, v]) => v.nodeId) : [];
    const stale = config.servers.filter((s) => !s.leader && !members.includes(s.node_id));
    for (const s of stale) await clock.vault(removePeer(run.client, s.node_id));
    clock.detail = stale.length ? `removed ${stale.map((s) => `${s.node_id} (${s.address})`).join(", ")}` : "none";
  });
}

/** dead_server_last_contact_threshold must outlast a node loading the snapshot, or autopilot may reap it. */
async function ensureAutopilotPatience(run: RestoreRun): Promise<void> {
  const client: VaultClient = run.client;
  await run.log.run("check autopilot dead-server threshold", run.nodes[0], async (clock) => {
    const current = (await client.get<{ data: AutopilotConfig }>("sys/storage/raft/autopilot/configuration")).body.data;
    const applyMs = run.log.steps
      .filter((s) => s.step.startsWith("restore snapshot") || s.step.includes("seals itself") || s.step.includes("serves the snapshot"))
      .reduce((a, s) => a + s.durationMs, 0);
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
    await clock.vault(setAutopilotConfig(client, { ...current, dead_server_last_contact_threshold: value }));
    clock.detail = `raised from ${current.dead_server_last_contact_threshold ?? "unset"} to ${value}`;
  });
}
