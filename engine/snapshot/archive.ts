import { createHash } from "node:crypto";
import { createGunzip, type ZlibOptions } from "node:zlib";
import type { TransformOptions, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { IntegrityError } from "../errors.js";
import { tarStream } from "../lazy-modules.js";

/** `meta.json` of a Raft snapshot (hashicorp/raft SnapshotMeta). */
export interface RaftSnapshotMeta {
  Version: number;
  ID: string;
  Index: number;
  Term: number;
  ConfigurationIndex?: number;
  Size?: number;
}

export interface ArchiveEntry {
  name: string;
  bytes: number;
  sha256: string;
}

export interface ArchiveReport {
  entries: ArchiveEntry[];
  meta: RaftSnapshotMeta;
  /** Entries named in the archive's own SHA256SUMS, all of which matched. */
  checkedEntries: string[];
}

/**
 * Something that reads an archive entry's bytes as they pass (the inventory reads state.bin this
 * way): the inspector hands over the same chunks it hashes, so no second gunzip is needed.
 * An observer must not throw; it keeps its own failures.
 */
export interface ArchiveEntryObserver {
  data(chunk: Buffer): void;
  end(): void;
}

export interface ArchiveInspectorOptions {
  /** Called for each entry by name; return an observer to see its bytes. */
  observe?: (name: string) => ArchiveEntryObserver | undefined;
}

const META = "meta.json";
const SUMS = "SHA256SUMS";
const SEALED_SUMS = "SHA256SUMS.sealed";
const MAX_SMALL_ENTRY = 1 << 20;

function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}

/**
 * A writable that takes the raw (gzip'd tar) snapshot bytes and checks them as they pass:
 * every entry is hashed and compared with the archive's own SHA256SUMS, `meta.json` is parsed,
 * and a missing or empty `SHA256SUMS.sealed` marks the snapshot incomplete (docs/architecture.md, "Snapshot archive").
 * Memory stays flat: `state.bin` is only ever hashed, never held.
 * `result` rejects with an IntegrityError when anything does not match.
 */
export function createArchiveInspector(opts: ArchiveInspectorOptions = {}): { input: Writable; result: Promise<ArchiveReport>; meta: Promise<RaftSnapshotMeta> } {
  // The gunzip stream is the input itself (no extra hop). Its default 16 KiB output chunks cost a
  // callback, a tar-stream step and a hash update each; 256 KiB chunks cut that per-byte overhead.
  // A 1 MiB write buffer (the zlib default is 16 KiB) lets the pipeline hand over whole socket
  // chunks without waiting for a drain after each one. Node passes stream options through; its
  // types do not list them.
  const gunzipOptions: ZlibOptions & TransformOptions = { chunkSize: 256 * 1024, writableHighWaterMark: 1 << 20 };
  const input = createGunzip(gunzipOptions);
  const tar = tarStream().extract();
  const entries: ArchiveEntry[] = [];
  const small = new Map<string, Buffer>();
  // meta.json is the archive's first entry: the backup learns the raft index (part of the object
  // key) from it after a few KiB, long before the archive ends.
  let metaSeen: (m: RaftSnapshotMeta) => void = () => undefined;
  const meta = new Promise<RaftSnapshotMeta>((resolve) => (metaSeen = resolve));

  tar.on("entry", (header, stream, next) => {
    const hash = createHash("sha256");
    let bytes = 0;
    const keep = header.name === META || header.name === SUMS || header.name === SEALED_SUMS;
    const chunks: Buffer[] = [];
    const observer = opts.observe?.(header.name);
    stream.on("data", (data: unknown) => {
      const chunk = data as Buffer;
      hash.update(chunk);
      observer?.data(chunk);
      bytes += chunk.length;
      if (keep && bytes <= MAX_SMALL_ENTRY) chunks.push(chunk);
    });
    stream.on("end", () => {
      observer?.end();
      entries.push({ name: header.name, bytes, sha256: hash.digest("hex") });
      if (keep) small.set(header.name, Buffer.concat(chunks));
      if (header.name === META) {
        const early = parseMeta(small.get(META)!);
        if (early) metaSeen(early);
      }
      next();
    });
    stream.on("error", next);
  });

  const result = (async (): Promise<ArchiveReport> => {
    try {
      await pipeline(input, tar);
    } catch (err) {
      throw new IntegrityError(`snapshot is not a readable gzip'd tar archive: ${err instanceof Error ? err.message : String(err)}`, {
        stage: "archive check",
        cause: err,
      });
    }
    const fail = (msg: string) => new IntegrityError(msg, { stage: "archive check" });
    const sumsText = small.get(SUMS);
    if (sumsText === undefined) throw fail(`snapshot archive has no ${SUMS}: incomplete snapshot`);
    const sums = parseSums(sumsText.toString("utf8"));
    if (sums.size === 0) throw fail(`snapshot archive's ${SUMS} lists no files: incomplete snapshot`);
    const sealed = small.get(SEALED_SUMS);
    if (!sealed || sealed.length === 0) throw fail(`snapshot archive's ${SEALED_SUMS} is missing or empty: incomplete snapshot`);
    const checked: string[] = [];
    for (const [name, expected] of sums) {
      const entry = entries.find((e) => e.name === name);
      if (!entry) throw fail(`${SUMS} lists ${name} but the archive does not contain it`);
      if (entry.sha256 !== expected) throw fail(`${name} does not match ${SUMS} (sha256 ${entry.sha256}, expected ${expected})`);
      checked.push(name);
    }
    for (const e of entries) {
      if (e.name !== SUMS && e.name !== SEALED_SUMS && !sums.has(e.name)) throw fail(`archive entry ${e.name} is not covered by ${SUMS}`);
    }
    const metaText = small.get(META);
    if (!metaText) throw fail(`snapshot archive has no ${META}`);
    let meta: RaftSnapshotMeta;
    try {
      meta = JSON.parse(metaText.toString("utf8")) as RaftSnapshotMeta;
    } catch {
      throw fail(`${META} is not valid JSON`);
    }
    if (typeof meta.Index !== "number" || typeof meta.Term !== "number") throw fail(`${META} has no raft Index/Term`);
    // SHA256SUMS lists its files in no fixed order; reports should not change with it.
    return { entries, meta, checkedEntries: checked.sort() };
  })();
  // The caller may learn of a failure from the write side first; never leave this unhandled.
  result.catch(() => undefined);
  // Settles `meta` too when the archive ends without a usable meta.json (result's error explains).
  const metaOrFailure = Promise.race([meta, result.then((r) => r.meta)]);
  metaOrFailure.catch(() => undefined);
  return { input, result, meta: metaOrFailure };
}

function parseMeta(bytes: Buffer): RaftSnapshotMeta | undefined {
  try {
    const m = JSON.parse(bytes.toString("utf8")) as RaftSnapshotMeta;
    return typeof m.Index === "number" && typeof m.Term === "number" ? m : undefined;
  } catch {
    return undefined;
  }
}
