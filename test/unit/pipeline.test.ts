import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { IntegrityError, OperationError, type VrbError } from "../../engine/index.js";
import { WritableStage } from "../../engine/backup/stages/writable.js";
import { StagePipeline, type Stage } from "../../engine/backup/pipeline.js";
import { HashingStage } from "../../engine/backup/stages/hashing.js";
import { ArchiveInspectionStage } from "../../engine/backup/stages/inspection.js";

// The stage runner with real Node streams: no Vault, no S3. Every failing run must end well within
// the test's own timeout: a hang here is the deadlock the runner exists to prevent.
const QUICK = 5_000;

/** An endless source of 64 KiB chunks (a snapshot that never ends unless someone stops it). */
function endless(): Readable & { reads: number } {
  const chunk = randomBytes(64 * 1024);
  const r = new Readable({
    read() {
      r.reads++;
      this.push(chunk);
    },
  }) as Readable & { reads: number };
  r.reads = 0;
  return r;
}

/** A stage that records what it saw and how it ended; `onWrite` may throw or hold back. */
function probe(name: string, onWrite?: (n: number, chunk: Buffer) => void | Promise<void>): Stage & { chunks: number; bytes: number; finished: boolean; aborted?: Error } {
  const s = {
    name,
    chunks: 0,
    bytes: 0,
    finished: false,
    aborted: undefined as Error | undefined,
    write(chunk: Buffer) {
      s.chunks++;
      s.bytes += chunk.length;
      return onWrite?.(s.chunks, chunk);
    },
    finish() {
      s.finished = true;
    },
    abort(reason: Error) {
      s.aborted = reason;
    },
  };
  return s;
}

const never = () => new Promise<void>(() => undefined);

describe("StagePipeline: every chunk through every stage, first failure wins", () => {
  it("passes every chunk to every stage in order and finishes them in order", async () => {
    const data = randomBytes(1 << 20);
    const order: string[] = [];
    const a = probe("a");
    const b = probe("b", async () => new Promise((r) => setImmediate(r)));
    a.finish = () => void order.push("a");
    b.finish = async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push("b");
    };
    const hashing = new HashingStage();
    const collected: Buffer[] = [];
    const sink = new WritableStage("sink", new Writable({ highWaterMark: 1024, write: (c: Buffer, _e, cb) => (collected.push(c), setImmediate(cb)) }));
    const chunks = Array.from({ length: 16 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    await new StagePipeline().run({ name: "src", stream: Readable.from(chunks) }, [a, hashing, b, sink]);
    expect(a.bytes).toBe(data.length);
    expect(b.chunks).toBe(16);
    expect(order).toEqual(["a", "b"]);
    expect(Buffer.concat(collected).equals(data)).toBe(true);
    expect(hashing.bytes).toBe(data.length);
    expect(hashing.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.aborted).toBeUndefined();
  });

  it(
    "a stage that throws mid-stream ends the pass with its name; the others are aborted, the source destroyed",
    async () => {
      const source = endless();
      const before = probe("before");
      const bad = probe("bad", (n) => {
        if (n === 5) throw new Error("boom");
      });
      const after = probe("after");
      const err = (await new StagePipeline().run({ name: "src", stream: source }, [before, bad, after]).catch((e: unknown) => e)) as VrbError;
      expect(err).toBeInstanceOf(OperationError);
      expect(err).toMatchObject({ stage: "bad", message: "bad failed: boom" });
      expect(before.aborted).toBe(err);
      expect(after.aborted).toBe(err);
      expect(after.chunks).toBe(4);
      expect(source.destroyed).toBe(true);
      expect(before.finished || after.finished).toBe(false);
    },
    QUICK,
  );

  it(
    "a stage that rejects while another holds back forever still ends the pass (no deadlock)",
    async () => {
      // The stuck stage never settles its write: the runner must not wait for it once another failed.
      const stuck = probe("stuck", (n) => (n >= 3 ? never() : undefined));
      const late = probe("late", (n) =>
        n === 3 ? new Promise((_, reject) => setTimeout(() => reject(new IntegrityError("late says no", { stage: "late check" })), 50)) : undefined,
      );
      const err = await new StagePipeline().run({ name: "src", stream: endless() }, [stuck, late]).catch((e: unknown) => e);
      // An engine error keeps its own stage and kind (exit code).
      expect(err).toBeInstanceOf(IntegrityError);
      expect(err).toMatchObject({ stage: "late check", message: "late says no" });
      expect(stuck.aborted).toBe(err);
    },
    QUICK,
  );

  it(
    "a stage failing between writes (its `failed` promise) ends a pass parked on backpressure",
    async () => {
      let rejectLater: (e: Error) => void = () => undefined;
      const checker: Stage = {
        name: "checker",
        failed: new Promise((_, reject) => (rejectLater = reject)),
        write: () => undefined,
        finish: never,
        abort: () => undefined,
      };
      const stuck = probe("stuck", (n) => (n === 2 ? never() : undefined));
      setTimeout(() => rejectLater(new Error("checksum mismatch")), 50);
      const err = await new StagePipeline().run({ name: "src", stream: endless() }, [checker, stuck]).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: "OperationError", stage: "checker", message: "checker failed: checksum mismatch" });
    },
    QUICK,
  );

  it(
    "a destroyed writable never drains: its stage fails with its error instead of waiting",
    async () => {
      const w = new Writable({ highWaterMark: 16, write: () => undefined }); // never calls back: always full
      const sink = new WritableStage("sink", w);
      setTimeout(() => w.destroy(new Error("disk gone")), 50);
      const err = await new StagePipeline().run({ name: "src", stream: endless() }, [new HashingStage(), sink]).catch((e: unknown) => e);
      expect(err).toMatchObject({ stage: "sink", message: "sink failed: disk gone" });
    },
    QUICK,
  );

  it(
    "the source breaking while a stage holds back fails at once, with the source's name",
    async () => {
      const source = endless();
      const stuck = probe("stuck", (n) => (n === 2 ? never() : undefined));
      setTimeout(() => source.destroy(Object.assign(new Error("other side closed"), { name: "SocketError" })), 50);
      const err = await new StagePipeline().run({ name: "stream", stream: source }, [stuck]).catch((e: unknown) => e);
      expect(err).toMatchObject({ stage: "stream", message: "stream failed: SocketError: other side closed" });
      expect(stuck.aborted).toBe(err);
    },
    QUICK,
  );

  it(
    "a failure in finish names the stage; stages after it are not finished",
    async () => {
      const first = probe("first");
      first.finish = () => Promise.reject(new Error("gate closed"));
      const second = probe("second");
      const err = await new StagePipeline().run({ name: "src", stream: Readable.from([Buffer.from("x")]) }, [first, second]).catch((e: unknown) => e);
      expect(err).toMatchObject({ stage: "first", message: "first failed: gate closed" });
      expect(second.finished).toBe(false);
      expect(second.aborted).toBe(err);
    },
    QUICK,
  );

  it(
    "fail() from outside (a deadline) ends a running pass, and race() rejects with that failure",
    async () => {
      const pass = new StagePipeline();
      const stuck = probe("stuck", (n) => (n === 2 ? never() : undefined));
      const deadline = new OperationError("did not finish within 1s (deadlineMs)", { stage: "stream" });
      setTimeout(() => pass.fail("stream", deadline), 50);
      const run = pass.run({ name: "src", stream: endless() }, [stuck]);
      await expect(run).rejects.toBe(deadline);
      await expect(pass.race(never())).rejects.toBe(deadline);
      expect(pass.signal.aborted).toBe(true);
      expect(pass.signal.reason).toBe(deadline);
      // Later failures do not replace the first.
      expect(pass.fail("other", new Error("later"))).toBe(deadline);
    },
    QUICK,
  );

  it(
    "the stall watchdog fails a pass in which nothing moves",
    async () => {
      const pass = new StagePipeline();
      pass.watch(200, (idle) => new OperationError(`nothing moved for ${idle}ms (stall timeout)`, { stage: "upload" }));
      const stuck = probe("stuck", (n) => (n === 1 ? never() : undefined));
      const err = await pass.run({ name: "src", stream: endless() }, [stuck]).catch((e: unknown) => e);
      expect(err).toMatchObject({ stage: "upload", message: expect.stringMatching(/stall timeout/) });
    },
    QUICK,
  );

  it(
    "a pass that failed before it began starts nothing",
    async () => {
      const pass = new StagePipeline();
      pass.fail("preflight", new Error("no leader"));
      const source = endless();
      const s = probe("s");
      await expect(pass.run({ name: "src", stream: source }, [s])).rejects.toMatchObject({ stage: "preflight" });
      expect(s.chunks).toBe(0);
      expect(source.destroyed).toBe(true);
    },
    QUICK,
  );
});

describe("StagePipeline with the archive check", () => {
  it(
    "a gzip'd stream that is no tar archive: the archive check's verdict, not zlib's or tar's raw error",
    async () => {
      const notTar = gzipSync(randomBytes(4 << 20));
      const inspection = new ArchiveInspectionStage();
      const chunks = Array.from({ length: Math.ceil(notTar.length / 65536) }, (_, i) => notTar.subarray(i * 65536, (i + 1) * 65536));
      const err = await new StagePipeline().run({ name: "src", stream: Readable.from(chunks) }, [new HashingStage(), inspection]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect(err).toMatchObject({ stage: "archive check" });
    },
    QUICK,
  );
});
