import { productOfManifest, type Product } from "../../vault/product.js";
import { closeSync, createReadStream, openSync, readSync, statSync } from "node:fs";
import { ConfigError, OperationError } from "../../errors.js";
import { silentProgress, type Progress } from "../../progress.js";
import type { RaftSnapshotMeta } from "../archive.js";
import { StagePipeline, type PipelineSource } from "../../backup/pipeline.js";
import { ArchiveInspectionStage } from "../../backup/stages/inspection.js";
import { openStoredSnapshotSource } from "../../backup/stages/source.js";
import type { SnapshotStore, StoredSnapshot } from "../../catalogue/snapshot-store.js";
import { DEFAULT_STALL_TIMEOUT_MS } from "../../backup/stall-watchdog.js";
import { labelMounts, type MountCount, type MountTableEntry, type PrefixCount, type SnapshotInventory } from "./counter.js";
import { StateBinInventory } from "./observer.js";
import { decryptingStream } from "../../crypto/decrypt-stream.js";
import { requireIdentityFor, type Identities } from "../../crypto/identities.js";

/** `vrb inspect --json` (docs/inspect.md). */
export interface InspectReport {
  ok: true;
  /** `s3://bucket/key` or the local file's path. */
  source: string;
  /** Raft meta from the archive's meta.json; `version` is the snapshot format's, `vault` the source's version when the manifest says. */
  meta: { index: number; term: number; version: number; vault?: string; product?: Product; takenAt?: string };
  totalKeys: number;
  totalBytes: number;
  prefixes: PrefixCount[];
  mounts: MountCount[];
  /** Where mount paths came from: the snapshot's manifest, a live cluster's mount table, or nowhere (uuids only). */
  mountPaths: "manifest" | "cluster" | "none";
  suspect?: { reason: string };
}

export interface InspectOptions {
  /** Mount table to name the mounts with (a live cluster's: `readMountTable`). */
  mountTable?: readonly MountTableEntry[];
  /** Private keys of a client-side encrypted stored snapshot: it is decrypted on the way (required for one). */
  identities?: Identities;
  progress?: Progress;
  stallTimeoutMs?: number;
}

/** The mount table a manifest's inventory carries (the backup read it from the cluster). */
export function mountTableOf(inventory: SnapshotInventory | undefined): MountTableEntry[] {
  return (inventory?.mounts ?? []).filter((m) => m.path).map((m) => ({ uuid: m.uuid, kind: m.kind, path: m.path!, type: m.type ?? "unknown" }));
}

/**
 * Reads a snapshot once, streamed, in constant memory: gunzip + untar with the archive check
 * (SHA256SUMS), meta.json, and state.bin's keys counted by prefix and mount. The same inspector
 * as the backup's pass; nothing is decrypted (keys are plain text, values only measured).
 */
async function readInventory(pass: StagePipeline, open: () => Promise<PipelineSource>, what: string): Promise<{ meta: RaftSnapshotMeta; inventory: SnapshotInventory }> {
  const counting = new StateBinInventory();
  const inspection = new ArchiveInspectionStage({ observe: counting.observe });
  try {
    const source = await open();
    await pass.run(source, [inspection]);
    const archive = await inspection.result;
    const inventory = counting.result();
    if (!inventory) throw new OperationError(`${what}: cannot count its keys: ${counting.problem ?? "state.bin was not read"}`, { stage: "inspect" });
    return { meta: archive.meta, inventory };
  } catch (err) {
    throw pass.fail("inspect", err);
  } finally {
    pass.close();
  }
}

function report(
  source: string,
  meta: RaftSnapshotMeta,
  inventory: SnapshotInventory,
  table: readonly MountTableEntry[] | undefined,
  from: InspectReport["mountPaths"],
): InspectReport {
  const labelled = table?.length ? labelMounts(inventory, table) : inventory;
  return {
    ok: true,
    source,
    meta: { index: meta.Index, term: meta.Term, version: meta.Version },
    totalKeys: labelled.totalKeys,
    totalBytes: labelled.totalBytes,
    prefixes: labelled.prefixes,
    mounts: labelled.mounts,
    mountPaths: table?.length ? from : "none",
  };
}

/**
 * What a file that is not a gzip'd archive but the kit's ciphertext starts with: age's header line,
 * or an OpenPGP packet that opens a message to a public key (tag 1, in the new or the old format).
 */
function encryptedFormatOf(head: Buffer): "age" | "openpgp" | undefined {
  if (head.subarray(0, 21).toString("latin1") === "age-encryption.org/v1") return "age";
  const first = head[0];
  if (first === 0xc1 || (first !== undefined && first >= 0x84 && first <= 0x87)) return "openpgp";
  return undefined;
}

/** Refuses a file of ciphertext (a stored encrypted snapshot copied by hand) with how to read it instead. */
function refuseCiphertextFile(path: string): void {
  const head = Buffer.alloc(32);
  const fd = openSync(path, "r");
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const format = encryptedFormatOf(head.subarray(0, n));
  if (!format) return;
  const decrypt = format === "age" ? `age --decrypt -i IDENTITY ${path} > plain.snap` : `gpg --decrypt ${path} > plain.snap`;
  throw new ConfigError(
    `${path} is ${format === "age" ? "an age-encrypted" : "an OpenPGP-encrypted"} snapshot, not a snapshot archive: decrypt it first (${decrypt}), or inspect the stored snapshot with --identity FILE`,
    { field: "ref", stage: "inspect" },
  );
}

/** Inspects a snapshot file on disk (`bao operator raft snapshot save`, a restore's download). */
export async function inspectSnapshotFile(path: string, opts: InspectOptions = {}): Promise<InspectReport> {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new OperationError(`snapshot file ${path} cannot be read`, { stage: "inspect" });
  }
  refuseCiphertextFile(path);
  opts.progress?.info(`inspecting ${path} (${size} bytes)`);
  const pass = new StagePipeline();
  const { meta, inventory } = await readInventory(pass, async () => ({ name: "read", stream: createReadStream(path) }), path);
  return report(path, meta, inventory, opts.mountTable, "cluster");
}

/**
 * Inspects a stored snapshot: downloaded and read once. Mount paths come from its manifest's
 * inventory (the backup read the mount table), else from `opts.mountTable`.
 */
export async function inspectStoredSnapshot(store: SnapshotStore, snapshot: StoredSnapshot, opts: InspectOptions = {}): Promise<InspectReport> {
  const where = snapshot.url;
  const progress = opts.progress ?? silentProgress;
  // Its keys are in the plaintext: an encrypted snapshot is read through its decryption, never as ciphertext.
  const enc = snapshot.manifest?.encryption;
  if (enc) requireIdentityFor(enc, opts.identities, where);
  const pass = new StagePipeline();
  const { meta, inventory } = await readInventory(
    pass,
    async () => {
      progress.info(`inspecting ${where} (${snapshot.bytes} bytes${enc ? `, ${enc.format}-encrypted: decrypted on the way` : ""})`);
      const stored = await openStoredSnapshotSource(pass, store, snapshot.key, {
        stallTimeoutMs: opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
        where,
        onResume: (m) => progress.warn(m),
      });
      if (!enc) return stored;
      const { plain } = await decryptingStream(enc, opts.identities!, stored.stream, where);
      return { name: stored.name, stream: plain };
    },
    where,
  );
  const fromManifest = mountTableOf(snapshot.manifest?.inventory);
  const out = fromManifest.length ? report(where, meta, inventory, fromManifest, "manifest") : report(where, meta, inventory, opts.mountTable, "cluster");
  out.meta.vault = snapshot.manifest?.vault.version;
  // Recorded by the backup, or guessed from the version for manifests older than the field.
  if (snapshot.manifest) out.meta.product = productOfManifest(snapshot.manifest.vault);
  out.meta.takenAt = snapshot.manifest?.takenAt;
  if (snapshot.manifest?.suspect) out.suspect = { reason: snapshot.manifest.suspect.reason };
  return out;
}
