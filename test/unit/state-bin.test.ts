import { describe, expect, it } from "vitest";
import { type StoredSnapshot } from "../../engine/index.js";
import { StateBinFormatError, StateBinParser, type StateBinEntry } from "../../engine/snapshot/inventory/state-bin.js";
import { planRetention } from "../../engine/catalogue/retention.js";
import { InventoryCounter, labelMounts } from "../../engine/snapshot/inventory/counter.js";
import { findShrinks } from "../../engine/snapshot/inventory/guard.js";

// Encodes entries exactly as OpenBao's snapshot writer does (internal/physical/raft/fsm.go writeTo
// with varint.go's delimited writer): uvarint length, then a StorageEntry message.
function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}
function field(num: number, wire: number, payload: Buffer): Buffer {
  return Buffer.concat([uvarint(num * 8 + wire), payload]);
}
function entry(key: string, value: Buffer, sealWrap = false): Buffer {
  const k = Buffer.from(key);
  const parts = [field(1, 2, Buffer.concat([uvarint(k.length), k])), field(2, 2, Buffer.concat([uvarint(value.length), value]))];
  if (sealWrap) parts.push(field(3, 0, uvarint(1)));
  const msg = Buffer.concat(parts);
  return Buffer.concat([uvarint(msg.length), msg]);
}

const sample: [string, number][] = [
  ["core/mounts", 700],
  ["logical/1111-aaaa/policy/x", 0],
  ["logical/1111-aaaa/versionv2/metadata/abc", 300],
  ["logical/2222-bbbb/data", 2_000],
  ["auth/3333-cccc/role/r1", 130],
  ["sys/token/id/h123", 90],
  ["nokeyslash", 5],
];

function stateBin(): { bytes: Buffer; expected: StateBinEntry[] } {
  const bufs = sample.map(([k, n], i) => entry(k, Buffer.alloc(n, i), i === 2));
  return { bytes: Buffer.concat(bufs), expected: sample.map(([key, valueBytes]) => ({ key, valueBytes })) };
}

function parseIn(chunks: Buffer[]): StateBinEntry[] {
  const seen: StateBinEntry[] = [];
  const p = new StateBinParser((e) => seen.push(e));
  for (const c of chunks) p.write(c);
  expect(p.end()).toBe(seen.length);
  return seen;
}

describe("state.bin parser", () => {
  const { bytes, expected } = stateBin();

  it("reads every entry from one chunk", () => {
    expect(parseIn([bytes])).toEqual(expected);
  });

  it("reads the same entries whatever the chunk boundaries (every split point, and byte by byte)", () => {
    for (let cut = 0; cut <= bytes.length; cut++) expect(parseIn([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(expected);
    expect(parseIn([...bytes].map((b) => Buffer.from([b])))).toEqual(expected);
    for (const size of [2, 3, 7, 13, 64, 1000]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      expect(parseIn(chunks)).toEqual(expected);
    }
  });

  it("a stream cut inside an entry is an error, not a short count", () => {
    const p = new StateBinParser(() => undefined);
    p.write(bytes.subarray(0, bytes.length - 3));
    expect(() => p.end()).toThrow(StateBinFormatError);
  });

  it("bytes that are not entries are an error naming the entry", () => {
    const p = new StateBinParser(() => undefined);
    expect(() => p.write(Buffer.from([0x05, 0x0f, 0x01, 0x02, 0x03, 0x04]))).toThrow(/entry 1.*wire type 7/);
  });
});

describe("inventory counter, mount labels and the shrink guard", () => {
  const counter = new InventoryCounter();
  for (const [key, valueBytes] of sample) counter.add({ key, valueBytes });
  const inv = counter.result();

  it("counts keys and bytes (key + value) in total, per top-level prefix and per mount uuid", () => {
    expect(inv.totalKeys).toBe(sample.length);
    expect(inv.totalBytes).toBe(sample.reduce((n, [k, v]) => n + k.length + v, 0));
    expect(inv.prefixes.find((p) => p.prefix === "logical/")).toEqual({ prefix: "logical/", keys: 3, bytes: expect.any(Number) });
    expect(inv.prefixes.map((p) => p.prefix).sort()).toEqual(["auth/", "core/", "logical/", "nokeyslash", "sys/"]);
    expect(inv.mounts.map((m) => [m.kind, m.uuid, m.keys])).toEqual([
      ["secret", "1111-aaaa", 2],
      ["secret", "2222-bbbb", 1],
      ["auth", "3333-cccc", 1],
    ]);
    const labelled = labelMounts(inv, [{ uuid: "1111-aaaa", kind: "secret", path: "kv/", type: "kv" }]);
    expect(labelled.mounts[0]).toMatchObject({ path: "kv/", type: "kv" });
    expect(labelled.mounts[1]!.path).toBeUndefined();
  });

  it("flags a mount and the mount total that fell by more than maxDropPercent, not small mounts", () => {
    const before = {
      ...inv,
      mounts: [
        { uuid: "a", kind: "secret" as const, keys: 100, bytes: 1 },
        { uuid: "b", kind: "secret" as const, keys: 100, bytes: 1 },
        { uuid: "s", kind: "auth" as const, keys: 4, bytes: 1 },
      ],
    };
    const after = {
      ...inv,
      mounts: [
        { uuid: "a", kind: "secret" as const, keys: 50, bytes: 1 },
        { uuid: "b", kind: "secret" as const, keys: 100, bytes: 1 },
      ],
    };
    const f = findShrinks(before, after, { maxDropPercent: 20, minKeys: 10 });
    expect(f.map((x) => [x.scope, x.mount?.uuid, x.dropPercent])).toEqual([
      ["mounts", undefined, 26.5],
      ["mount", "a", 50],
    ]);
    expect(findShrinks(before, after, { maxDropPercent: 60, minKeys: 10 })).toEqual([]);
  });
});

describe("retention with a suspect snapshot", () => {
  const snap = (hoursAgo: number, suspect: boolean): StoredSnapshot => ({
    bucket: "b",
    key: `c-${hoursAgo}`,
    url: `s3://b/c-${hoursAgo}`,
    cluster: "c",
    takenAt: new Date(Date.now() - hoursAgo * 3_600_000),
    raftIndex: 100 - hoursAgo,
    bytes: 1,
    status: "good",
    manifest: suspect ? ({ suspect: { reason: "shrink" } } as StoredSnapshot["manifest"]) : undefined,
  });

  it("keeps the newest good snapshot before the suspect ones, whatever keepLast says", () => {
    const plan = planRetention([snap(1, true), snap(2, true), snap(3, false), snap(4, false)], { keepLast: 1 });
    expect(plan.keep.map((d) => d.snapshot.key)).toEqual(["c-1", "c-3"]);
    expect(plan.delete.map((d) => d.snapshot.key)).toEqual(["c-2", "c-4"]);
  });
});
