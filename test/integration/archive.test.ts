import { describe, expect, it } from "vitest";
import { gunzipSync, gzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { IntegrityError } from "../../engine/index.js";
import { WritableStage } from "../../engine/backup/stages/writable.js";
import { StagePipeline } from "../../engine/backup/pipeline.js";
import { HashingStage } from "../../engine/backup/stages/hashing.js";
import { ArchiveInspectionStage } from "../../engine/backup/stages/inspection.js";
import { rootClient, sharedEnv } from "../support/env.js";
import { inspectSnapshot } from "../support/snapshot-archive.js";

async function realSnapshot(): Promise<Buffer> {
  const client = rootClient(sharedEnv());
  const res = await client.open("GET", "sys/storage/raft/snapshot", { bodyTimeout: 0 });
  expect(res.statusCode).toBe(200);
  const buf = Buffer.from(await res.body.arrayBuffer());
  await client.close();
  return buf;
}

/** Flips one byte inside a tar entry's data, keeping the archive well-formed. */
function tamperEntry(snapshot: Buffer, entry: string): Buffer {
  const tar = gunzipSync(snapshot);
  for (let off = 0; off + 512 <= tar.length;) {
    const name = tar
      .subarray(off, off + 100)
      .toString("utf8")
      .replace(/\0.*$/s, "");
    const size = parseInt(
      tar
        .subarray(off + 124, off + 136)
        .toString("utf8")
        .replace(/\0.*$/s, "")
        .trim() || "0",
      8,
    );
    if (name === entry && size > 0) {
      tar[off + 512 + Math.floor(size / 2)]! ^= 0xff;
      return gzipSync(tar);
    }
    off += 512 + Math.ceil(size / 512) * 512;
    if (!name) break;
  }
  throw new Error(`no entry ${entry}`);
}

describe("snapshot archive inspection (real OpenBao snapshot)", () => {
  it("accepts a real snapshot: meta.json parsed, every entry matches SHA256SUMS", async () => {
    const report = await inspectSnapshot(await realSnapshot());
    expect(report.meta.Index).toBeGreaterThan(0);
    expect(report.meta.Term).toBeGreaterThan(0);
    expect(report.entries.map((e) => e.name).sort()).toEqual(["SHA256SUMS", "SHA256SUMS.sealed", "meta.json", "state.bin"]);
    expect(report.checkedEntries.sort()).toEqual(["meta.json", "state.bin"]);
  });

  it("rejects a snapshot whose state.bin was altered by one byte", async () => {
    const bad = tamperEntry(await realSnapshot(), "state.bin");
    await expect(inspectSnapshot(bad)).rejects.toThrow(/state.bin does not match SHA256SUMS/);
  });

  it("rejects a truncated download as unreadable", async () => {
    const snap = await realSnapshot();
    const err = await inspectSnapshot(snap.subarray(0, Math.floor(snap.length / 2))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
  });

  it("a download the inspector rejects mid-stream fails the hashing pipeline instead of stalling it", async () => {
    // Chunks larger than the inspector's write buffer: the pass must wait for a drain that a
    // rejected (destroyed) inspector never emits. A refresh of a corrupt snapshot hung on this.
    const inspection = new ArchiveInspectionStage();
    const junk = randomBytes(6 << 20);
    const chunks = [junk.subarray(0, 3 << 20), junk.subarray(3 << 20)];
    const sink = new WritableStage("sink", new Writable({ write: (_c, _e, cb) => cb() }));
    const flow = new StagePipeline().run({ name: "verify", stream: Readable.from(chunks) }, [new HashingStage(), inspection, sink]);
    await expect(flow).rejects.toThrow(/header|gzip|destroyed|archive/i);
    await expect(flow).rejects.toMatchObject({ name: "IntegrityError", stage: "archive check" });
    await expect(inspection.result).rejects.toBeInstanceOf(IntegrityError);
  }, 20_000);
});
