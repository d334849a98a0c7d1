import type { Command } from "commander";
import { ConfigError, isSnapshotUrl, SnapshotStore, UrlSnapshot, type BackupPolicy, type ObjectStore } from "../../engine/index.js";

/** Flags of the commands that accept a pre-signed GET URL as the ref (restore, verify, drill). */
export interface UrlRefFlags {
  sha256?: string;
  manifestUrl?: string;
}

export function addUrlRefFlags(cmd: Command): Command {
  return cmd
    .option("--sha256 <hex>", "URL ref: the snapshot's expected SHA-256 (its manifest's sha256); a URL ref needs this or --manifest-url")
    .option("--manifest-url <url>", "URL ref: pre-signed GET URL of the snapshot's manifest (e.g. from vrb presign)");
}

/**
 * The remote snapshot of a `https://…` ref (docs/export.md), or undefined for store refs. The URL
 * flags without a URL ref are a mistake worth saying (exit 2), not something to ignore.
 */
export function remoteFromRef(ref: string, o: UrlRefFlags & { stallTimeout?: number }, cluster?: string): UrlSnapshot | undefined {
  if (!isSnapshotUrl(ref)) {
    if (o.sha256 || o.manifestUrl) {
      throw new ConfigError("--sha256 and --manifest-url apply to a pre-signed URL ref (https://...) only; a stored snapshot is checked against its own manifest", {
        field: o.sha256 ? "--sha256" : "--manifest-url",
      });
    }
    return undefined;
  }
  return new UrlSnapshot({ url: ref, manifestUrl: o.manifestUrl, sha256: o.sha256, cluster, stallTimeoutMs: o.stallTimeout ? o.stallTimeout * 1000 : undefined });
}

/**
 * Where a restore or drill takes its snapshot from: the policy's store for a store ref, or the
 * pre-signed URLs of a `https://…` ref (then no store); `snapshot` is what reports name.
 */
export function snapshotSourceFor(
  ref: string,
  o: UrlRefFlags & { stallTimeout?: number },
  policy: BackupPolicy,
  objects: ObjectStore,
): { store?: SnapshotStore; remote?: UrlSnapshot; snapshot: string } {
  const remote = remoteFromRef(ref, o, policy.cluster.name);
  if (remote) return { remote, snapshot: remote.label };
  return { store: new SnapshotStore(objects), snapshot: ref };
}
