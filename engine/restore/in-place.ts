import { ConfigError, OperationError } from "../errors.js";
import { appliedIndex, findActiveNode, sealStatus, unseal } from "../vault/operations.js";
import { raftConfiguration } from "../vault/raft-peers.js";
import { checkSeal, downloadAndVerify, resolveSnapshot } from "./preflight.js";
import type { RestoreRun } from "./restore-run.js";
import { describeHealth } from "./target-health.js";
import { obtainToken, tokenWorks } from "./token.js";
import { uploadSnapshot } from "./snapshot-upload.js";
import { verifyRestore } from "./verify-restored.js";

/** In-place rollback: a live cluster goes back to the snapshot through its active node. */
export async function inPlace(run: RestoreRun): Promise<void> {
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
          `whose data the restore would replace. Add ${run.names.force} to restore it anyway (snapshot-force; a Shamir-sealed cluster then seals and needs the snapshot's unseal keys). Nothing was changed.`,
        { field: "force", stage: "preflight" },
      );
    }
    clock.detail = `${found.addr} is active (${found.health.length} node(s))`;
    return found.addr;
  });
  const plan = await checkSeal(run, nodes);
  if (opts.force && plan.kind === "shamir" && run.keys.length === 0) {
    throw new ConfigError(`${run.names.force} restores with snapshot-force, after which a Shamir-sealed cluster is sealed: give ${run.names.unsealKeys} with the snapshot's keys`, {
      field: "keysFile",
      stage: "preflight",
    });
  }
  const client = run.client.forNode(active);
  if ((await obtainToken(run, client)) === "none") {
    throw new ConfigError(
      "an in-place restore is sent through the live cluster's API and needs a token allowed to write sys/storage/raft/snapshot: " +
        "give one in VAULT_TOKEN (or the init JSON's root_token, or keys on a cluster that serves generate-root). Nothing was changed.",
      { field: "token", stage: "preflight" },
    );
  }
  const before = await raftConfiguration(client);
  const indexBefore = await appliedIndex(client);
  const file = await downloadAndVerify(run, snapshot);
  run.sizeDeadlinesTo(file);

  run.phase = "restore-sent";
  const force = Boolean(opts.force);
  await uploadSnapshot(run, client, active, file, force);
  if (force && plan.kind === "shamir") await unsealAfterForce(run);
  const leader = await log.run(
    "wait until the cluster serves the restored data",
    undefined,
    (c) =>
      c.until("an active node with the snapshot applied", async () => {
        const found = await findActiveNode(client, nodes).catch(() => undefined);
        if (!found) return undefined;
        const idx = await appliedIndex(client.forNode(found.addr));
        return force || idx > indexBefore ? found.addr : undefined;
      }),
    { sized: true },
  );
  const verifyClient = run.client.forNode(leader);
  // Tokens made after the snapshot was taken (ours included) no longer exist: find one that does.
  if (!(await tokenWorks(verifyClient, run.progress))) {
    run.generatedToken = undefined;
    run.generatedTokenAccessor = undefined;
    verifyClient.setToken(undefined);
    await obtainToken(run, verifyClient, "the token is not in the restored data");
  }
  run.phase = "verifying";
  await verifyRestore(run, verifyClient, before.servers.filter((s) => s.voter).length);
}

/** After snapshot-force a Shamir-sealed cluster seals itself; unseal it with the snapshot's keys. */
async function unsealAfterForce(run: RestoreRun): Promise<void> {
  const { log, nodes } = run;
  run.client.setToken(undefined);
  for (const addr of nodes) {
    const c = run.client.forNode(addr);
    await log.run(
      "wait until sealed by the restore",
      addr,
      (clock) => clock.until(`${addr} to apply the snapshot and seal itself`, async () => ((await sealStatus(c)).sealed ? true : undefined)),
      { sized: true },
    );
  }
  for (const addr of nodes) {
    const c = run.client.forNode(addr);
    // A node sealed by the restore is unusable until unsealed, which takes seconds: not left half-way.
    await log.run("unseal with the snapshot's keys", addr, (clock) => clock.vault(unseal(c, run.keys, addr, { timeoutMs: clock.timeoutMs() })), {
      sized: true,
      completes: true,
    });
  }
}
