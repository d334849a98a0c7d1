// The work no backup can skip, run on a saved snapshot in a Node of its own (measure.ts,
// irreducibleCpuMs): SHA-256 of the file, gunzip, SHA-256 of what it inflates to. Prints the CPU
// milliseconds of that work alone, Node's start-up left out. Its own process, with the heap settings
// `vrb` runs with, because in the bench's process the same work measured 1.7 to 3.4 CPU-s/GiB from
// one run to the next: the bench's larger heap and its other work were counted with it.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";

async function main(file: string): Promise<void> {
  const outer = createHash("sha256");
  const inner = createHash("sha256");
  const cpu = process.cpuUsage();
  await pipeline(
    createReadStream(file, { highWaterMark: 1024 * 1024 }),
    new Transform({ transform: (c: Buffer, _e, cb) => (outer.update(c), cb(null, c)) }),
    createGunzip({ chunkSize: 256 * 1024 }),
    new Writable({ write: (c: Buffer, _e, cb) => (inner.update(c), cb()) }),
  );
  outer.digest();
  inner.digest();
  const used = process.cpuUsage(cpu);
  process.stdout.write(`${JSON.stringify({ cpuMs: (used.user + used.system) / 1000 })}\n`);
}

const file = process.argv[2];
if (!file) throw new Error("usage: irreducible-work.js SNAPSHOT_FILE");
await main(file);
