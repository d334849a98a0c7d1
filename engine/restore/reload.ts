import { ConfigError, OperationError } from "../errors.js";
import type { NodeHealth } from "../vault/operations.js";
import { nodeHealth, sealStatus, unseal } from "../vault/operations.js";
import { compareVersions, productProfile, type Product } from "../vault/product.js";
import { generateRootAdvice } from "./root-token.js";
import { restartCommandFor, runRestartCommand } from "./restart.js";
import type { RestoreRun } from "./restore-run.js";
import { obtainToken } from "./token.js";
import { waitRole } from "./wait-role.js";

/**
 * How an auto-unseal node 1 reloads the restored cluster's keys once the snapshot is applied
 * (until then it holds the throwaway cluster's keys in memory and no node can join it):
 * - "restart": the operator's restart command; the new process loads the restored keys and
 *   unseals itself with its seal. No token, no recovery keys.
 * - "token": seal it with a token of the original cluster (given, or the keys file's root token),
 *   unseal it with the recovery keys.
 * - "generate-root": the same, with a short-lived root token made from the recovery keys, where
 *   the targets serve generate-root.
 */
export type ReloadRoute = { kind: "restart"; command: string } | { kind: "token" } | { kind: "generate-root"; declared: boolean };

/**
 * Whether a listener with default settings serves the unauthenticated generate-root endpoints:
 * OpenBao from 2.5.3 on does not; Vault 1.x does, Vault 2.x does not. An uninitialised node
 * answers these endpoints "sealed" whatever its listener says, so only the default can be known
 * before node 1 is initialised.
 */
export function generateRootServedByDefault(product: Product | undefined, version: string | undefined): boolean {
  if (product === "vault") return compareVersions(version, "2.0.0") < 0;
  if (product === "openbao") return compareVersions(version, "2.5.3") < 0;
  return false;
}

/**
 * Preflight, nothing changed yet: the route node 1 will reload by, or a refusal (exit 2) naming
 * what to give. A token given can only be tried after the restore (its cluster does not exist
 * yet); a declared or default generate-root is checked again once node 1 is initialised.
 */
export function planReload(run: RestoreRun, node1: Pick<NodeHealth, "product" | "version">): ReloadRoute {
  const { opts, names } = run;
  if (opts.restartCommand) {
    // Made once now, so a node address a shell would misread is refused before anything changes.
    restartCommandFor(opts.restartCommand, run.nodes[0]!, 1);
    return { kind: "restart", command: opts.restartCommand };
  }
  if (opts.token || opts.keys?.rootToken) return { kind: "token" };
  const hasKeys = (opts.keys?.keys.length ?? 0) > 0;
  if (hasKeys && opts.unauthedGenerateRoot) return { kind: "generate-root", declared: true };
  if (hasKeys && generateRootServedByDefault(node1.product, node1.version)) return { kind: "generate-root", declared: false };
  const sealType = run.seal?.type ?? "auto-unseal";
  const product = node1.product;
  const name = product ? productProfile(product).displayName : "these";
  const tool = product ? productProfile(product).tool : "bao";
  const advice = generateRootAdvice(product);
  const noGenerateRoot = hasKeys
    ? `the targets (${name}${node1.version ? ` ${node1.version}` : ""}) do not serve generate-root with default listener settings (${advice.why})`
    : "no recovery keys were given to make a root token with generate-root";
  throw new ConfigError(
    `a rebuild onto ${sealType}-sealed nodes must make node 1 reload the restored cluster's keys once the snapshot is applied, and nothing given here can: ` +
      `no token of the original cluster was given and ${noGenerateRoot}. Give one of:\n` +
      `  - a token of the original cluster: ${names.token};\n` +
      `  - ${names.restartCommand} (e.g. 'ssh {host} sudo systemctl restart ${tool === "bao" ? "openbao" : "vault"}'): node 1 is restarted instead and unseals itself, no token needed` +
      (names.unauthedGenerateRoot
        ? `;\n  - or serve generate-root on the new nodes (listener stanza; ${advice.setting}), then pass ${names.unauthedGenerateRoot} with ${names.recoveryKeys}.\n`
        : ".\n") +
      `Nothing was changed.`,
    { field: "token", stage: "preflight" },
  );
}

/**
 * Node 1 holds the applied snapshot: make it load the restored cluster's keys by `route`. Ends
 * with node 1 active, and a token where one can be had (run.token).
 */
export async function reloadNode1(run: RestoreRun, route: ReloadRoute): Promise<void> {
  if (route.kind === "restart") {
    await restartNode1(run, route.command);
    await obtainToken(run, run.client);
    return;
  }
  const { log, client } = run;
  const n1 = run.nodes[0]!;
  if ((await obtainToken(run, client)) === "none") {
    throw new OperationError(
      `no token works on the restored cluster, and node 1 must be sealed once (which needs a token) to load the restored cluster's keys before other nodes can join it; ` +
        `or restart its server (${run.names.restartCommand})`,
      { stage: "get a token for verification" },
    );
  }
  await log.run("reload node 1: seal", n1, (c) => c.vault(client.put("sys/seal", {})));
  await log.run("reload node 1: unseal with the original recovery keys", n1, (c) => c.vault(unseal(client, run.keys, n1, { timeoutMs: c.timeoutMs() })), {
    sized: true,
    completes: true,
  });
  await waitRole(log, client, n1, ["active"], "wait until node 1 is active", { sized: true });
}

/** When node 1 last became active (`sys/leader`); a restart changes it. Undefined where not told. */
async function activeTime(run: RestoreRun): Promise<string | undefined> {
  const r = await run.client.get<{ active_time?: string }>("sys/leader", { anonymous: true, timeoutMs: 5_000 }).catch(() => undefined);
  const t = r?.body.active_time;
  return t && !t.startsWith("0001-") ? t : undefined;
}

/**
 * Runs the restart command for node 1, then waits until the new process is active: unsealed by
 * its seal with the restored keys, of the snapshot's cluster, and active since after the command
 * (a command that exits 0 without restarting anything must not pass for a reload).
 */
export async function restartNode1(run: RestoreRun, template: string): Promise<void> {
  const { log, client } = run;
  const n1 = run.nodes[0]!;
  const sealType = run.seal?.type ?? "auto-unseal";
  const before = await activeTime(run);
  const command = restartCommandFor(template, n1, 1);
  await log.run(
    "reload node 1: restart its server (--restart-command)",
    n1,
    async (c) => {
      c.detail = command;
      await c.vault(runRestartCommand(command, { label: "restart node 1", timeoutMs: c.timeoutMs(), timeoutSetting: run.names.stepTimeout, progress: run.progress }));
    },
    { completes: true },
  );
  const clusterId = run.manifest?.vault.clusterId;
  let sealedSince: number | undefined;
  let last = "not answering yet";
  await log.run(
    `wait until node 1 unseals itself (${sealType}) with the restored keys`,
    n1,
    async (c) => {
      const outcome = await c.until(
        `${n1} to come back from the restart, unsealed by its ${sealType} seal with the restored cluster's keys`,
        async () => {
          const s = await sealStatus(client).catch(() => undefined);
          if (!s) return undefined;
          if (s.sealed) {
            last = "sealed";
            sealedSince ??= Date.now();
            return Date.now() - sealedSince > 15_000 ? ("stays sealed" as const) : undefined;
          }
          sealedSince = undefined;
          const h = await nodeHealth(client);
          const now = await activeTime(run);
          if (before && now === before) {
            last = "active since before the restart command: it has not restarted";
            return undefined;
          }
          last = h.role;
          if (h.role !== "active") return undefined;
          if (clusterId && h.clusterId && h.clusterId !== clusterId) {
            return "other cluster" as const;
          }
          c.detail = `active again${h.clusterId ? `, cluster id ${h.clusterId}` : ""}`;
          return "active" as const;
        },
        250,
        { status: async () => `node 1: ${last}` },
      );
      if (outcome === "stays sealed") {
        throw new OperationError(
          `${n1} came back sealed from the restart and its ${sealType} seal does not unseal it: the seal cannot decrypt the snapshot's keyring. ` +
            `The target nodes must use the same ${sealType} key as the original cluster (same transit key / KMS key).`,
          { stage: "restart node 1" },
        );
      }
      if (outcome === "other cluster") {
        throw new OperationError(`${n1} came back from the restart serving another cluster than the snapshot's (${clusterId}); the restart command may restart another server`, {
          stage: "restart node 1",
        });
      }
    },
    { sized: true },
  );
}
