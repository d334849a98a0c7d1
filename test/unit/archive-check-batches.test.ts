import { describe, expect, it } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import tarStream from "tar-stream";
import { StagePipeline } from "../../engine/backup/pipeline.js";
import { ARCHIVE_CHECK_WRITE_BYTES, ArchiveInspectionStage } from "../../engine/backup/stages/inspection.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A snapshot archive as Vault writes one: meta.json first, state.bin, SHA256SUMS and its sealed twin. */
async function archive(state: Buffer, opts: { damageStateAt?: number } = {}): Promise<Buffer> {
  const meta = Buffer.from(JSON.stringify({ Index: 4242, Term: 7 }));
  const sums = Buffer.from(`${sha256(meta)}  meta.json\n${sha256(state)}  state.bin\n`);
  const stored = Buffer.from(state);
  if (opts.damageStateAt !== undefined) stored[opts.damageStateAt]! ^= 0x01;
  const pack = tarStream.pack();
  const done = (async () => {
    const parts: Buffer[] = [];
    for await (const c of pack) parts.push(c as Buffer);
    return Buffer.concat(parts);
  })();
  for (const [name, body] of [
    ["meta.json", meta],
    ["state.bin", stored],
    ["SHA256SUMS", sums],
    ["SHA256SUMS.sealed", Buffer.from("sealed")],
  ] as const) {
    pack.entry({ name, size: body.length }, body);
  }
  pack.finalize();
  return gzipSync(await done);
}

/** Cuts bytes the way a socket delivers them: uneven chunks, many small, some larger than a batch. */
function socketChunks(bytes: Buffer): Buffer[] {
  const sizes = [1, 1500, 22_000, 65_536, 3, 300_000, 2048, 17];
  const chunks: Buffer[] = [];
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, bytes.length - off);
    chunks.push(bytes.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

async function check(bytes: Buffer) {
  const inspection = new ArchiveInspectionStage();
  const pass = new StagePipeline().run({ name: "stream", stream: Readable.from(socketChunks(bytes)) }, [inspection]);
  const [report] = await Promise.all([inspection.result, pass]);
  return report;
}

describe("the archive check takes the stream in batches (zlib's cost is per write)", () => {
  // Incompressible, so the archive spans many batches and zlib lags behind the writes: a batch
  // buffer reused before zlib had read it would change what it hashes.
  const state = randomBytes(ARCHIVE_CHECK_WRITE_BYTES * 12 + 12_345);

  it("uneven socket-sized chunks: every entry hashed exactly, meta.json read", async () => {
    const report = await check(await archive(state));
    expect(report.meta).toMatchObject({ Index: 4242, Term: 7 });
    expect(report.entries.find((e) => e.name === "state.bin")).toEqual({ name: "state.bin", bytes: state.length, sha256: sha256(state) });
    expect(report.checkedEntries).toEqual(["meta.json", "state.bin"]);
  });

  it("one bit changed far into state.bin is refused", async () => {
    const bytes = await archive(state, { damageStateAt: state.length - 5000 });
    await expect(check(bytes)).rejects.toThrow(/state.bin does not match SHA256SUMS/);
  });

  it("an archive smaller than one batch is checked when the stream ends", async () => {
    const small = randomBytes(10_000);
    const report = await check(await archive(small));
    expect(report.entries.find((e) => e.name === "state.bin")?.sha256).toBe(sha256(small));
  });
});
