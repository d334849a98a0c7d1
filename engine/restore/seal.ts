import { ConfigError } from "../errors.js";
import type { RestoreKeys } from "./keys.js";

export interface SealFacts {
  type: string;
  recoverySeal: boolean;
}

/**
 * How the restore handles the seal. "shamir": the node seals itself after `snapshot-force` and is
 * unsealed with the ORIGINAL unseal keys, node by node. "auto" (transit, cloud KMS, PKCS#11): the
 * snapshot's keyring is opened by the same seal on the target, nodes unseal themselves, and the
 * keys held are recovery keys, useful only to make a verification token.
 */
export interface SealPlan {
  kind: "shamir" | "auto";
  type: string;
}

const describe = (s: SealFacts) => (s.recoverySeal ? `the '${s.type}' auto-unseal seal` : "a Shamir seal");

const MIGRATION =
  "Restoring across seal kinds would be a seal migration, which is a separate operation: restore onto nodes configured with the snapshot's seal, " +
  "then migrate the seal (the 'seal migration' procedure of Vault / OpenBao). Nothing was changed.";

/**
 * Decides the seal handling before any node changes, from what each target reports
 * (`sys/seal-status`), the seal the manifest recorded at backup time, and what the keys file
 * says it holds. Refuses mixed targets and any restore across seal kinds or types.
 */
export function planSeal(targets: { addr: string; seal: SealFacts }[], snapshotSeal: SealFacts | undefined, keys: RestoreKeys | undefined): SealPlan {
  const first = targets[0];
  if (!first) throw new ConfigError("no target nodes", { field: "nodes" });
  const mixed = targets.filter((t) => t.seal.type !== first.seal.type || t.seal.recoverySeal !== first.seal.recoverySeal);
  if (mixed.length) {
    throw new ConfigError(
      `the target nodes use different seals (${targets.map((t) => `${t.addr}: ${t.seal.type}`).join(", ")}); every node of a cluster must use the same seal. ` +
        `Fix the nodes' seal stanzas and run again. Nothing was changed.`,
      { field: "nodes", stage: "preflight" },
    );
  }
  const target = first.seal;
  if (snapshotSeal) {
    if (snapshotSeal.recoverySeal !== target.recoverySeal || (snapshotSeal.recoverySeal && snapshotSeal.type !== target.type)) {
      throw new ConfigError(`the snapshot was taken from a cluster with ${describe(snapshotSeal)}, but the target nodes use ${describe(target)}. ${MIGRATION}`, {
        field: "nodes",
        stage: "preflight",
      });
    }
  } else if (keys?.kind === "unseal" && target.recoverySeal) {
    throw new ConfigError(`the keys file holds unseal keys (a Shamir-sealed cluster), but the target nodes use ${describe(target)}. ${MIGRATION}`, {
      field: "keysFile",
      stage: "preflight",
    });
  } else if (keys?.kind === "recovery" && !target.recoverySeal) {
    throw new ConfigError(`the keys file holds recovery keys (an auto-unseal cluster), but the target nodes use a Shamir seal. ${MIGRATION}`, {
      field: "keysFile",
      stage: "preflight",
    });
  }
  if (target.recoverySeal && keys?.kind === "unseal") {
    throw new ConfigError(
      `the keys file holds unseal keys, but the snapshot's cluster and the targets use ${describe(target)}: give its recovery keys (recovery_keys_b64) instead`,
      {
        field: "keysFile",
        stage: "preflight",
      },
    );
  }
  if (!target.recoverySeal && keys?.kind === "recovery") {
    throw new ConfigError("the keys file holds recovery keys, but the snapshot's cluster and the targets use a Shamir seal: give its unseal keys (unseal_keys_b64)", {
      field: "keysFile",
      stage: "preflight",
    });
  }
  return { kind: target.recoverySeal ? "auto" : "shamir", type: target.type };
}
