import { OperationError, messageOf } from "../errors.js";
import { productVersion } from "./binaries.js";
import type { SnapshotStore, StoredSnapshot } from "../catalogue/snapshot-store.js";
import type { RemoteSnapshot } from "../catalogue/url-source.js";
import { compareVersions, describeProduct, productOfManifest, type Product } from "../vault/product.js";
import { restoreReportOf } from "../restore/restore-run.js";

/** Which server the throwaway nodes of a drill / recover run, and what the snapshot came from. */
export interface ThrowawayProduct {
  /** The snapshot's source: from its manifest, or guessed from the version an older manifest records. */
  source: { product: Product; version: string; recorded: boolean };
  /** The throwaway nodes: the source's product unless the caller's shape names another. */
  nodes: { product: Product; version?: string };
  /** The snapshot resolved once, before any node starts, so the restore takes exactly this one. */
  snapshot: StoredSnapshot;
  /** What the restore is told to restore: this snapshot by its full key (a remote one by its label). */
  ref: string;
}

/**
 * Resolves the snapshot (no node started yet) and picks the throwaway nodes' product: the one the
 * manifest records, so a Vault snapshot goes into Vault. A missing binary of that product fails
 * here, before anything starts, naming `npx vrb tools install`.
 */
export async function pickThrowawayProduct(opts: {
  store?: SnapshotStore;
  remote?: RemoteSnapshot;
  snapshot?: string;
  cluster?: string;
  product?: Product;
  /** Cancels the store's reads (an interrupted command). */
  signal?: AbortSignal;
}): Promise<ThrowawayProduct> {
  const ref = opts.snapshot ?? "latest";
  if (!opts.store && !opts.remote) throw new OperationError("no snapshot store and no remote snapshot given");
  const snapshot = opts.remote ? await opts.remote.resolve() : await opts.store!.resolve(ref, opts.cluster, { signal: opts.signal });
  const vault = snapshot.manifest?.vault;
  const source = { product: productOfManifest(vault), version: vault?.version ?? "unknown", recorded: Boolean(vault?.product) };
  const product = opts.product ?? source.product;
  let version: string | undefined;
  try {
    version = productVersion(product);
  } catch (err) {
    throw new OperationError(
      `the snapshot is from ${describeProduct(source.product, source.version)}, and its throwaway nodes need ${describeProduct(product)}: ${messageOf(err)}`,
      {
        stage: "preflight",
        cause: err,
      },
    );
  }
  return { source, nodes: { product, version }, snapshot, ref: opts.remote ? ref : snapshot.url };
}

/**
 * A restore into the throwaway nodes failed. When their binary is another product than the
 * snapshot's, or an older version of it, that is the likely reason, and the error says so first
 * (e.g. OpenBao cannot load some Vault snapshots, openbao/openbao#1154 "invalid key size 33"),
 * with the restore's own message after it; otherwise the error is passed on unchanged.
 */
export function explainUnloadable(err: unknown, picked: ThrowawayProduct): Error {
  const { source, nodes } = picked;
  const crossProduct = source.product !== nodes.product;
  const older = !crossProduct && nodes.version !== undefined && compareVersions(source.version, nodes.version) > 0;
  if (!crossProduct && !older) return err instanceof Error ? err : new OperationError(messageOf(err));
  const from = describeProduct(source.product, source.version);
  const into = describeProduct(nodes.product, nodes.version);
  const why = crossProduct
    ? `${describeProduct(nodes.product)} cannot load every ${describeProduct(source.product)} snapshot (e.g. openbao/openbao#1154, "invalid key size 33"); ` +
      `install ${describeProduct(source.product)} ('npx vrb tools install') and run it with the snapshot's own product`
    : `an older server may not load a newer one's snapshot; install ${from} or newer`;
  const wrapped = new OperationError(`this ${from} snapshot cannot be restored into ${into} (the throwaway nodes' binary): ${why}. The restore said: ${messageOf(err)}`, {
    stage: "restore",
    cause: err,
  });
  const report = restoreReportOf(err);
  return report ? Object.assign(wrapped, { report }) : wrapped;
}
