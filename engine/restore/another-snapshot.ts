import { isTrustedSnapshot, type StoredSnapshot } from "../catalogue/snapshot-store.js";
import type { RestoreRun } from "./restore-run.js";

/**
 * What to do after the snapshot failed its integrity check (exit 3) before any node was touched.
 * The same snapshot fails the same way every time, so "run the same command again" is no advice:
 * name the good snapshot taken before it (by its manifest), and how to list the others.
 */
export async function anotherSnapshotAdvice(run: RestoreRun): Promise<string> {
  const ref = run.opts.snapshot;
  const damaged = run.snapshot;
  const what = damaged ? damaged.url : `'${ref}'`;
  const head = `nothing was changed on any node. The snapshot ${what} fails its integrity check and will fail it again: do not retry it.`;
  if (run.opts.remote || !run.opts.store) {
    return `${head} Restore another snapshot: ask for the URLs of an earlier good one (vrb presign <key>, where the snapshots are stored).`;
  }
  const cluster = damaged?.cluster ?? run.opts.cluster;
  // Named by the store itself: the caller may be `pulumi up`, whose user set no vrb flags.
  const store = run.opts.store;
  const copy = store.objects.name === "primary" ? "" : ` and --destination ${store.objects.name}`;
  const list = `vrb list${cluster ? ` --cluster ${cluster}` : ""} (with the --policy or --bucket of ${store.url()}${copy})`;
  const previous = damaged ? await previousGood(run, damaged).catch(() => undefined) : undefined;
  const use = (key: string) => run.names.useSnapshot.replace("{key}", key);
  if (!previous) return `${head} List the snapshots with ${list} and ${use("the key of an earlier good one")}.`;
  return (
    `${head} The good snapshot before it is ${previous.key} (taken ${previous.takenAt.toISOString()}, raft index ${previous.raftIndex}): ` +
    `${use(previous.key)}. ${list} lists them all; vrb verify ${damaged!.key} shows what is wrong with this one.`
  );
}

/** The newest trusted snapshot of the damaged one's cluster taken before it, by the store's listing. */
async function previousGood(run: RestoreRun, damaged: StoredSnapshot): Promise<StoredSnapshot | undefined> {
  const store = run.opts.store!;
  // An s3:// ref may name another bucket than the one this store lists.
  if (damaged.bucket !== store.bucket) return undefined;
  const before = (s: StoredSnapshot) => s.key !== damaged.key && isTrustedSnapshot(s) && s.takenAt.getTime() < damaged.takenAt.getTime();
  return (await store.findNewest(damaged.cluster, before)).found;
}
