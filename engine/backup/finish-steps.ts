import { IntegrityError, OperationError } from "../errors.js";
import type { ObjectStore, WrittenObject } from "../storage/object-store.js";
import { describeNetError } from "../vault/client.js";
import { manifestKeyFor, type SnapshotManifest } from "../snapshot/manifest.js";

// The steps after the streamed pass, in order: read the object back, lock it, write the manifest
// last. Each takes what it needs and names its own stage in errors.

/** The SSE-KMS key a destination asks for (only S3 destinations have one). */
export function kmsKeyOf(destination: object): string | undefined {
  return "kmsKeyId" in destination && typeof destination.kmsKeyId === "string" ? destination.kmsKeyId : undefined;
}

/**
 * Reads the uploaded object back (stage "upload"): its size must be the bytes sent, and with a
 * kmsKeyId it must be SSE-KMS encrypted. Returns the encryption the server reports.
 */
export async function checkStoredObject(
  store: ObjectStore,
  obj: WrittenObject,
  sent: { bytes: number; uploaded: number; kmsKeyId?: string },
): Promise<{ algorithm: string; kmsKeyId?: string } | undefined> {
  const where = store.url(obj.key);
  const head = await store.head(obj.key, { version: obj.version });
  if (head?.bytes !== sent.bytes) {
    throw new IntegrityError(`${where} holds ${head ? head.bytes : "no"} bytes but ${sent.bytes} were sent (uploaded ${sent.uploaded})`, { stage: "upload" });
  }
  const sse = head.encryption ? { algorithm: head.encryption.algorithm, kmsKeyId: head.encryption.keyId } : undefined;
  if (sent.kmsKeyId && sse?.algorithm !== "aws:kms") {
    throw new OperationError(`${where} is not SSE-KMS encrypted although destination.kmsKeyId is set (server reports ${sse?.algorithm ?? "none"})`, {
      stage: "upload",
    });
  }
  return sse;
}

/**
 * Sets per-object retention explicitly (multipart objects get no lock from bucket defaults on
 * every server) and reads it back (stage "lock").
 */
export async function lockObject(
  store: ObjectStore,
  obj: WrittenObject,
  mode: "GOVERNANCE" | "COMPLIANCE",
  until: Date,
): Promise<{ mode: "GOVERNANCE" | "COMPLIANCE"; until: string }> {
  const where = store.url(obj.key);
  try {
    await store.lock(obj, mode, until);
  } catch (err) {
    throw new OperationError(`could not set ${mode} retention on ${where}: ${describeNetError(err)} (object lock must be enabled when the bucket is created)`, {
      stage: "lock",
      cause: err,
    });
  }
  const lock = (await store.head(obj.key, { version: obj.version }))?.lock;
  const got = lock?.until;
  // Servers store whole seconds; allow for that, nothing more.
  if (lock?.mode !== mode || !got || got.getTime() < until.getTime() - 1_000) {
    throw new OperationError(
      `${where} does not report the retention just set (mode ${lock?.mode ?? "none"}, until ${got?.toISOString() ?? "none"}; wanted ${mode} until ${until.toISOString()})`,
      { stage: "lock" },
    );
  }
  return { mode, until: got.toISOString() };
}

/**
 * Writes the manifest beside its snapshot, last: without it the snapshot does not count. Locked
 * like its snapshot (as long as it), when the snapshot is. `onWritten` is told the manifest's
 * version as soon as it exists, so a failure after that (the lock) can remove it.
 */
export async function writeManifest(
  store: ObjectStore,
  manifest: SnapshotManifest,
  opts: {
    lock?: { mode: "GOVERNANCE" | "COMPLIANCE"; until: string };
    signal?: AbortSignal;
    onWritten?: (obj: WrittenObject) => void;
  } = {},
): Promise<string> {
  const manifestKey = manifestKeyFor(manifest.key);
  const obj = await store.writeText(manifestKey, JSON.stringify(manifest, null, 2) + "\n", { contentType: "application/json", signal: opts.signal });
  opts.onWritten?.(obj);
  if (opts.lock) await lockObject(store, obj, opts.lock.mode, new Date(opts.lock.until));
  return manifestKey;
}
