import type { Identities } from "../crypto/identities.js";
import { ConfigError, InterruptedError, OperationError, messageOf, throwIfInterrupted } from "../errors.js";
import type { NodeShape } from "../throwaway/nodes.js";
import { silentProgress, type Progress } from "../progress.js";
import { withRestoredToken, withThrowawayCluster, type ThrowawayNodes, type ThrowawayTeardown } from "../drill/drill.js";
import { listKvSecrets } from "../restore/inventory.js";
import type { RestoreKeys } from "../restore/keys.js";
import type { RestoreReport } from "../restore/restore-run.js";
import type { SnapshotStore } from "../catalogue/snapshot-store.js";
import { clusterTls, type LoginOptions } from "../vault/login-settings.js";
import { withVaultSession } from "../vault/login.js";
import { VaultClient, VaultHttpError } from "../vault/client.js";
import { readAclPolicy, readKv1, readKv2Live, readKv2Secret, writeAclPolicy, writeKv1, writeKv2Metadata, writeKv2Versions, type Kv2Secret } from "./secret-io.js";
import { checkRecoverInput, mountTable, resolveTargets, type KvTarget } from "./secret-targets.js";
import { containsAll, sameData } from "./values.js";

export interface RecoverOptions {
  store: SnapshotStore;
  /** "latest" (default) | "s3://bucket/key" | key */
  snapshot?: string;
  cluster?: string;
  /** KV paths as for `bao kv get` ("secret/app/db"); one ending in "/" is a whole subtree. */
  paths: string[];
  /** ACL policies (sys/policies/acl) to recover by name. */
  aclPolicies?: string[];
  /** The LIVE cluster the secrets are written to, and how to log in to it (engine/vault/auth.ts). */
  live: LoginOptions;
  /** The snapshot cluster's unseal or recovery keys (and init root token, if the file has it): the throwaway node needs them. */
  keys?: RestoreKeys;
  /** A token of the snapshot's cluster, tried on the throwaway node (default: none; then the keys file's root token, then generate-root). */
  token?: string;
  /** Decrypts a client-side encrypted snapshot on its way to the throwaway node (engine/crypto/identities.ts). */
  identities?: Identities;
  /** How the throwaway node is configured; an auto-unseal snapshot needs `{ sealStanza }` (as for a drill). */
  shape?: NodeShape;
  /** Parent folder of the throwaway node (default: the OS temp folder). */
  workDir?: string;
  /** Only compare: report missing / differs / same per path and write nothing. */
  dryRun?: boolean;
  progress?: Progress;
  timeoutsMs?: Partial<{ step: number; total: number }>;
  /**
   * Stops the recovery (SIGINT, SIGTERM): the throwaway node is stopped and removed; once writing
   * to the live cluster, the item being written is finished and the rest are reported as not attempted.
   */
  signal?: AbortSignal;
}

export type RecoverKind = "kv2" | "kv1" | "policy";
/** missing: not on the live cluster (or its current version is deleted); differs: another value; same: nothing to do. */
export type RecoverState = "missing" | "differs" | "same";

/** One recovered item. Never a value: only where it is and what was done. */
export interface RecoveredPath {
  /** "secret/app/db" (KV) or "sys/policies/acl/NAME" (policy). */
  path: string;
  /** The mount ("secret"), or "sys" for a policy. */
  mount: string;
  kind: RecoverKind;
  state: RecoverState;
  action: "written" | "none";
  /** KV v2: versions written as new versions on the live cluster. */
  versionsWritten?: number;
  /** KV v2: custom_metadata (re)written. */
  metadataWritten?: boolean;
}

export interface RecoverReport {
  ok: boolean;
  dryRun: boolean;
  snapshot: RestoreReport["snapshot"];
  /** The server the throwaway node ran: the snapshot's own product (its manifest says) and version. */
  throwaway: ThrowawayNodes;
  /** Address of the live cluster written to (or compared with). */
  live: string;
  paths: RecoveredPath[];
  summary: { missing: number; differs: number; same: number; written: number };
  /**
   * Set when a write to the live cluster failed part-way (the report is then on the error, as
   * `report`): `paths` are the items done before it (written or already the same), `path` the one
   * that failed and `notAttempted` those after it (not compared, not written).
   */
  failure?: RecoverFailure;
  teardown: ThrowawayTeardown;
  durationMs: number;
}

export interface RecoverFailure {
  path: string;
  /** Why its write failed (the live cluster's answer; never a value). */
  message: string;
  notAttempted: string[];
  /** What to do, and the `vrb recover` of exactly what is left (this snapshot, not "latest"). */
  next: string;
}

/** What the snapshot holds for one item, with its values: kept in memory only, never reported. */
type FromSnapshot =
  | { kind: "kv2"; mount: string; rel: string; secret: Kv2Secret }
  | { kind: "kv1"; mount: string; rel: string; data: Record<string, unknown> }
  | { kind: "policy"; name: string; policy: string };

/**
 * Brings single secrets back from a snapshot without rolling the cluster back: the snapshot is
 * restored into a throwaway 1-node cluster, the named KV secrets (v2 with every version and its
 * custom metadata, v1, whole subtrees) and ACL policies are read there, the throwaway node is torn
 * down, and each item that is missing or differs on the live cluster is written to it. Nothing on
 * the live cluster is deleted: KV v2 values come back as new versions.
 */
export async function recoverSecrets(opts: RecoverOptions): Promise<RecoverReport> {
  const started = Date.now();
  const progress = opts.progress ?? silentProgress;
  const aclPolicies = opts.aclPolicies ?? [];
  checkRecoverInput(opts.paths, aclPolicies);
  return withVaultSession({ ...opts.live, progress }, async (session) => {
    const addr = opts.live.cluster.nodes[0];
    if (!addr) throw new ConfigError("no live Vault address to recover into: set VAULT_ADDR or cluster.nodes", { field: "cluster.nodes" });
    const live = new VaultClient({ addr, token: session.token, ...clusterTls(opts.live.cluster, opts.live.env) });
    try {
      // Before any node starts: each path must be in a KV mount the live token can reach.
      const liveMounts = await Promise.all(opts.paths.map((p) => liveMountOf(live, p)));
      const { result: items, teardown } = await withThrowawayCluster({ ...opts, nodes: 1, label: "recover", canaries: undefined }, async ({ nodes, restore, throwaway }) => {
        const read = await withRestoredToken(nodes[0]!.apiAddr, { token: opts.token, keys: opts.keys, progress }, (snap) =>
          readFromSnapshot(snap, opts.paths, aclPolicies, liveMounts, progress),
        );
        if (!read) {
          throw new OperationError(
            "no token worked on the throwaway cluster restored from the snapshot: give a keys file with the init root_token, or VAULT_TOKEN of a token that existed when the snapshot was taken",
            { stage: "recover" },
          );
        }
        return { read, snapshot: restore.snapshot, throwaway };
      });
      const paths: RecoveredPath[] = [];
      const report = (ok: boolean): RecoverReport => {
        const count = (s: RecoverState) => paths.filter((p) => p.state === s).length;
        return {
          ok,
          dryRun: Boolean(opts.dryRun),
          snapshot: items.snapshot,
          throwaway: items.throwaway,
          live: live.addr,
          paths,
          summary: { missing: count("missing"), differs: count("differs"), same: count("same"), written: paths.filter((p) => p.action === "written").length },
          teardown,
          durationMs: Date.now() - started,
        };
      };
      for (const [i, item] of items.read.entries()) {
        try {
          throwIfInterrupted(opts.signal, `before writing ${labelOf(item)}`, "recover");
          paths.push(await recoverItem(live, item, Boolean(opts.dryRun), progress));
        } catch (err) {
          // Stop at the first refused write (a check-and-set conflict means someone is writing now):
          // the items before it ARE written, and the operator must see which, and what is left.
          const failure = failureOf(items.snapshot, err, items.read.slice(i));
          const r = { ...report(false), failure };
          const message = `${failure.message}\n${describeFailure(r)}`;
          const out =
            err instanceof InterruptedError
              ? new InterruptedError(message, { signal: err.signal, stage: "recover", cause: err })
              : new OperationError(message, { stage: "recover", cause: err });
          throw Object.assign(out, { report: r });
        }
      }
      return report(true);
    } finally {
      await live.close();
    }
  });
}

/** "secret/app/db" or "sys/policies/acl/NAME": how an item is named in reports. */
function labelOf(item: FromSnapshot): string {
  return item.kind === "policy" ? `sys/policies/acl/${item.name}` : `${item.mount}/${item.rel}`;
}

/** The `vrb recover` flag that names an item again (KV paths are already in `bao kv get` form). */
function flagOf(item: FromSnapshot): string {
  return item.kind === "policy" ? `--acl-policy ${item.name}` : `--path ${item.mount}/${item.rel}`;
}

/** `left[0]` failed with `err`; the rest were not attempted. */
function failureOf(snapshot: RecoverReport["snapshot"], err: unknown, left: FromSnapshot[]): RecoverFailure {
  const failed = left[0]!;
  const cause = err instanceof OperationError && err.cause !== undefined ? err.cause : err;
  const conflict = cause instanceof VaultHttpError && cause.status === 400 && /check-and-set/i.test(cause.errors.join(" "));
  const denied = cause instanceof VaultHttpError && cause.status === 403;
  const fix =
    err instanceof InterruptedError
      ? `the recovery was interrupted before ${labelOf(failed)}, which was not written`
      : conflict
        ? `someone wrote ${labelOf(failed)} during the recovery: look at its current value first (running again writes the snapshot's value as a new version over it)`
        : denied
          ? `the live token may not write ${labelOf(failed)}: use a token whose policy allows it`
          : `fix the cause above`;
  const again = `vrb recover ${snapshot.url} ${left.map(flagOf).join(" ")}`;
  return {
    path: labelOf(failed),
    message: messageOf(err),
    notAttempted: left.slice(1).map(labelOf),
    next: `${fix}, then recover what is left (with your other flags as before): ${again}`,
  };
}

/** The error's text: what was written, what was not, what to run next. Paths only, never a value. */
function describeFailure(r: RecoverReport & { failure: RecoverFailure }): string {
  const list = (xs: string[]) => (xs.length > 20 ? `${xs.slice(0, 20).join(", ")} and ${xs.length - 20} more (--json lists them all)` : xs.join(", ")) || "none";
  const f = r.failure;
  return [
    `written before it: ${list(r.paths.filter((p) => p.action === "written").map((p) => p.path))}`,
    ...(r.paths.some((p) => p.action === "none") ? [`already the same: ${list(r.paths.filter((p) => p.action === "none").map((p) => p.path))}`] : []),
    `not written: ${f.path} (failed)${f.notAttempted.length ? `; not attempted: ${list(f.notAttempted)}` : ""}`,
    `next: ${f.next}`,
  ].join("\n");
}

/** The live mount that holds `spec` ("secret/"), by the mount lookup any token with access to the path may make. */
async function liveMountOf(live: VaultClient, spec: string): Promise<{ path: string; kind: "kv1" | "kv2" }> {
  try {
    const res = await live.get<{ data: { path: string; type: string; options?: { version?: string } | null } }>(`sys/internal/ui/mounts/${spec}`);
    const d = res.body.data;
    if (d.type !== "kv")
      throw new ConfigError(`--path ${spec}: on the live cluster it is in a '${d.type}' mount (${d.path}); only KV secrets can be recovered`, { field: "--path" });
    return { path: d.path, kind: d.options?.version === "2" ? "kv2" : "kv1" };
  } catch (err) {
    if (err instanceof VaultHttpError && (err.status === 403 || err.status === 404 || err.status === 400)) {
      throw new OperationError(
        `--path ${spec}: no KV mount on the live cluster ${live.addr} holds it, or the token may not use it. If the mount itself was deleted, enable it again first (e.g. 'bao secrets enable -path=MOUNT -version=2 kv'); else check the token's policy`,
        { stage: "preflight", cause: err },
      );
    }
    throw err;
  }
}

/** Reads every requested item from the throwaway cluster; nothing missing from the snapshot passes silently. */
async function readFromSnapshot(
  snap: VaultClient,
  specs: string[],
  aclPolicies: string[],
  liveMounts: { path: string; kind: "kv1" | "kv2" }[],
  progress: Progress,
): Promise<FromSnapshot[]> {
  const targets = specs.length ? resolveTargets(specs, await mountTable(snap)) : [];
  const out: FromSnapshot[] = [];
  for (const [i, t] of targets.entries()) {
    const lm = liveMounts[i]!;
    if (lm.path.replace(/\/+$/, "") !== t.mount || lm.kind !== t.kind) {
      throw new OperationError(
        `--path ${t.spec}: in the snapshot it is in ${t.mount}/ (${t.kind}), on the live cluster in ${lm.path} (${lm.kind}); recover into a mount of the same path and KV version`,
        { stage: "recover" },
      );
    }
    const rels = await secretsOf(snap, t);
    for (const rel of rels) {
      const item = await readOne(snap, t, rel);
      if (item) out.push(item);
      else if (t.rest === rel) {
        // `bao kv get` paths have no data/ segment; the API's do. Say so when that is the likely mix-up.
        const hint = t.kind === "kv2" && /^(data|metadata)\//.test(rel) ? ` (write it as for 'bao kv get': ${t.mount}/${rel.replace(/^(data|metadata)\//, "")})` : "";
        throw new ConfigError(`--path ${t.spec}: the snapshot holds no such secret, or none of its versions is readable${hint}`, { field: "--path" });
      } else progress.warn(`recover: ${t.mount}/${rel}: no readable version in the snapshot (all deleted or destroyed); skipped`);
    }
    progress.info(`recover: ${t.spec}: ${rels.length} secret(s) read from the snapshot`);
  }
  for (const name of aclPolicies) {
    const policy = await readAclPolicy(snap, name);
    if (policy === undefined) throw new ConfigError(`--acl-policy ${name}: the snapshot has no ACL policy of that name`, { field: "--acl-policy" });
    out.push({ kind: "policy", name, policy });
  }
  return out;
}

/** The secrets a target names: itself, or every secret below it when it ends in "/" (or is a whole mount). */
async function secretsOf(snap: VaultClient, t: KvTarget): Promise<string[]> {
  if (t.rest !== "" && !t.rest.endsWith("/")) return [t.rest];
  const found = await listKvSecrets(snap, t.mount, t.kind === "kv2" ? 2 : 1, 16, t.rest);
  if (found.length === 0) throw new ConfigError(`--path ${t.spec}: the snapshot holds no secrets under it`, { field: "--path" });
  return found;
}

async function readOne(snap: VaultClient, t: KvTarget, rel: string): Promise<FromSnapshot | undefined> {
  if (t.kind === "kv2") {
    const secret = await readKv2Secret(snap, t.mount, rel);
    return secret && secret.versions.length > 0 ? { kind: "kv2", mount: t.mount, rel, secret } : undefined;
  }
  const data = await readKv1(snap, t.mount, rel);
  return data ? { kind: "kv1", mount: t.mount, rel, data } : undefined;
}

/** Compares one item with the live cluster and, unless dry-run, writes what is missing or differs. */
async function recoverItem(live: VaultClient, item: FromSnapshot, dryRun: boolean, progress: Progress): Promise<RecoveredPath> {
  const label = labelOf(item);
  try {
    const entry = await (item.kind === "kv2" ? recoverKv2(live, item, dryRun) : item.kind === "kv1" ? recoverKv1(live, item, dryRun) : recoverPolicy(live, item, dryRun));
    const did = entry.action === "written" ? ` -> written${entry.versionsWritten ? ` (${entry.versionsWritten} version(s))` : ""}` : "";
    progress.info(`recover: ${label}: ${entry.state}${did}`);
    return entry;
  } catch (err) {
    throw new OperationError(`recover ${label} on the live cluster failed: ${messageOf(err)}`, { stage: "recover", cause: err });
  }
}

async function recoverKv2(live: VaultClient, item: Extract<FromSnapshot, { kind: "kv2" }>, dryRun: boolean): Promise<RecoveredPath> {
  const { mount, rel, secret } = item;
  const now = await readKv2Live(live, mount, rel);
  const latest = secret.versions[secret.versions.length - 1]!.data;
  const dataSame = now.current !== undefined && sameData(now.current, latest);
  const metaSame = containsAll(now.customMetadata, secret.customMetadata);
  const state: RecoverState = now.current === undefined ? "missing" : dataSame && metaSame ? "same" : "differs";
  const base = { path: `${mount}/${rel}`, mount, kind: "kv2" as const, state };
  if (dryRun || state === "same") return { ...base, action: "none" };
  // A secret gone with its metadata comes back with its whole history; a live one only gets the
  // snapshot's value as one new version (its own history stays as it is).
  const versions = !now.exists ? secret.versions.map((v) => v.data) : dataSame ? [] : [latest];
  const versionsWritten = await writeKv2Versions(live, mount, rel, versions, now.currentVersion);
  let metadataWritten = false;
  if (!now.exists || !metaSame) {
    const settings = now.exists ? {} : Object.fromEntries(Object.entries(secret.settings).filter(([, v]) => v !== undefined));
    await writeKv2Metadata(live, mount, rel, { ...settings, custom_metadata: { ...now.customMetadata, ...secret.customMetadata } });
    metadataWritten = true;
  }
  return { ...base, action: "written", versionsWritten, metadataWritten };
}

async function recoverKv1(live: VaultClient, item: Extract<FromSnapshot, { kind: "kv1" }>, dryRun: boolean): Promise<RecoveredPath> {
  const now = await readKv1(live, item.mount, item.rel);
  const state: RecoverState = now === undefined ? "missing" : sameData(now, item.data) ? "same" : "differs";
  const base = { path: `${item.mount}/${item.rel}`, mount: item.mount, kind: "kv1" as const, state };
  if (dryRun || state === "same") return { ...base, action: "none" };
  await writeKv1(live, item.mount, item.rel, item.data);
  return { ...base, action: "written" };
}

async function recoverPolicy(live: VaultClient, item: Extract<FromSnapshot, { kind: "policy" }>, dryRun: boolean): Promise<RecoveredPath> {
  const now = await readAclPolicy(live, item.name);
  const state: RecoverState = now === undefined ? "missing" : now === item.policy ? "same" : "differs";
  const base = { path: `sys/policies/acl/${item.name}`, mount: "sys", kind: "policy" as const, state };
  if (dryRun || state === "same") return { ...base, action: "none" };
  await writeAclPolicy(live, item.name, item.policy);
  return { ...base, action: "written" };
}
