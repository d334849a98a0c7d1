import { z } from "zod";
import { IntegrityError } from "../errors.js";

const countSchema = { keys: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() };

/**
 * What the snapshot holds, counted from its storage keys during the backup's one pass
 * (engine/snapshot/inventory/): totals, per top-level prefix, per mount with the mount table's
 * path and type when the backup could read it. Absent in manifests of older versions.
 */
export const inventorySchema = z.object({
  totalKeys: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
  prefixes: z.array(z.object({ prefix: z.string(), ...countSchema })),
  mounts: z.array(z.object({ uuid: z.string(), kind: z.enum(["secret", "auth"]), path: z.string().optional(), type: z.string().optional(), ...countSchema })),
});
const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);
const digestSchema = z.object({ sha256: sha256Schema, bytes: z.number().int().nonnegative() });

/** `.manifest.json` beside each snapshot (docs/architecture.md, "Manifest"). Written last: no manifest, no good snapshot. */
export const manifestSchema = z.object({
  format: z.literal(1),
  cluster: z.string(),
  key: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The S3 version id of the snapshot object this manifest describes (versioned buckets; absent otherwise and in older manifests). */
  versionId: z.string().optional(),
  takenAt: z.string(),
  vault: z.object({
    version: z.string(),
    /**
     * Which product the cluster runs ("openbao" | "vault", from its sys/health). A drill, recover or
     * inspect starts throwaway nodes of the same product. Absent in manifests of older versions:
     * then guessed from `version` (engine/vault/product.ts, guessProduct).
     */
    product: z.enum(["openbao", "vault"]).optional(),
    leaderAddr: z.string(),
    clusterId: z.string().optional(),
    /**
     * The source cluster's seal at backup time (sys/seal-status): `type` e.g. "shamir", "transit",
     * "awskms"; `recoverySeal` true for auto-unseal seals (they have recovery keys, not unseal keys).
     * A restore refuses targets of the other kind before touching them. Absent in manifests of
     * older versions: then the restore goes by the keys file and the targets.
     */
    seal: z.object({ type: z.string(), recoverySeal: z.boolean() }).optional(),
  }),
  raft: z.object({ index: z.number().int(), term: z.number().int(), snapshotId: z.string() }),
  archive: z.object({ entries: z.number().int(), verified: z.literal(true) }),
  lock: z.object({ mode: z.enum(["GOVERNANCE", "COMPLIANCE"]), until: z.string() }).optional(),
  sse: z.object({ algorithm: z.string(), kmsKeyId: z.string().optional() }).optional(),
  tool: z.object({ name: z.string(), version: z.string() }),
  inventory: inventorySchema.optional(),
  /**
   * Set by the shrink guard (policy `guard.action: fail`): the snapshot is stored but held far
   * fewer keys than the previous good one. Never chosen as `latest`; restorable when named.
   */
  suspect: z.object({ reason: z.string(), against: z.string().optional() }).optional(),
  /**
   * The snapshot before encryption: in older encrypted manifests only, and checked when present.
   * Encrypted backups now record one digest, `sha256`/`bytes` above (the stored ciphertext's): the
   * cipher authenticates the plaintext (docs/encryption.md, "What proves an encrypted snapshot").
   */
  plaintext: digestSchema.optional(),
  /** Client-side encryption of the snapshot and the files archive: format and who can decrypt (never a private key). */
  encryption: z.object({ format: z.enum(["age", "openpgp"]), recipients: z.array(z.string()).min(1) }).optional(),
  /** The configuration files archive beside the snapshot (policy `files`), as stored, and every file in it. */
  files: z
    .object({
      key: z.string(),
      bytes: z.number().int().nonnegative(),
      sha256: sha256Schema,
      plaintext: digestSchema.optional(),
      entries: z.array(
        z.object({
          path: z.string(),
          size: z.number().int().nonnegative(),
          mode: z.number().int().nonnegative(),
          sha256: sha256Schema,
          /** Holds a private key (PEM, age or OpenPGP): written back 0600. */
          secret: z.boolean(),
        }),
      ),
    })
    .optional(),
});

export type SnapshotManifest = z.infer<typeof manifestSchema>;

export const MANIFEST_SUFFIX = ".manifest.json";
export const SNAPSHOT_SUFFIX = ".snap";

/** The configuration files archive beside a snapshot: `<snapshot key>.files.tar`. */
export const FILES_SUFFIX = ".files.tar";

export function filesKeyFor(snapshotKey: string): string {
  return snapshotKey + FILES_SUFFIX;
}

export function manifestKeyFor(snapshotKey: string): string {
  return snapshotKey + MANIFEST_SUFFIX;
}

function compactTimestamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** `<prefix><cluster>/<YYYY>/<MM>/<DD>/<cluster>-<YYYYMMDDTHHMMSSZ>-<index>.snap` */
export function snapshotKeyFor(prefix: string, cluster: string, takenAt: Date, raftIndex: number): string {
  const iso = takenAt.toISOString();
  const [y, m, d] = [iso.slice(0, 4), iso.slice(5, 7), iso.slice(8, 10)];
  return `${prefix}${cluster}/${y}/${m}/${d}/${cluster}-${compactTimestamp(takenAt)}-${raftIndex}${SNAPSHOT_SUFFIX}`;
}

/** Reads cluster, time and raft index back out of a snapshot key; undefined if it is not one of ours. */
export function parseSnapshotKey(key: string): { cluster: string; takenAt: Date; index: number } | undefined {
  const m = /([a-z0-9][a-z0-9-]*)-(\d{8}T\d{6}Z)-(\d+)\.snap$/.exec(key);
  if (!m) return undefined;
  const t = m[2]!;
  const takenAt = new Date(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`);
  return { cluster: m[1]!, takenAt, index: Number(m[3]) };
}

export function parseManifest(text: string, key: string): SnapshotManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new IntegrityError(`manifest ${key} is not valid JSON`);
  }
  const r = manifestSchema.safeParse(doc);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new IntegrityError(`manifest ${key} is malformed: ${i.path.join(".")} ${i.message}`);
  }
  return r.data;
}
