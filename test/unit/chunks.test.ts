import { randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { chunksOf } from "../../engine/backup/chunks.js";

// The pass reads every snapshot through chunksOf: the bytes must come through whole and in order,
// without joining chunks, with memory bounded while the consumer is slow, and the stream's end,
// error and early exit behaving as `for await` does.
describe("chunksOf", () => {
  it("hands on the chunks as written, in order, never joined, even when the consumer falls behind", async () => {
    const sent = Array.from({ length: 200 }, (_, i) => randomBytes(1000 + i));
    const stream = new PassThrough();
    for (const c of sent) stream.write(c);
    stream.end();
    const got: Buffer[] = [];
    for await (const c of chunksOf(stream)) {
      got.push(c);
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(got.map((c) => c.length)).toEqual(sent.map((c) => c.length));
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
  });

  it("pauses the stream while the consumer holds back: a fast source is not read ahead without bound", async () => {
    let produced = 0;
    const chunk = randomBytes(64 * 1024);
    const source = new Readable({
      read() {
        produced++;
        this.push(chunk);
      },
    });
    const it = chunksOf(source)[Symbol.asyncIterator]();
    await it.next();
    // A consumer busy elsewhere: the source keeps filling only up to the pause threshold and its
    // own buffer (highWaterMark), not the whole stream.
    await new Promise((r) => setTimeout(r, 200));
    expect(produced).toBeLessThan(40);
    await it.return(undefined);
    expect(source.destroyed).toBe(true);
  });

  it("throws the stream's error, and a close before the end is an error", async () => {
    const failing = new PassThrough();
    failing.write(Buffer.from("abc"));
    setTimeout(() => failing.destroy(new Error("connection reset")), 10);
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const c of chunksOf(failing)) seen.push(c.toString());
      })(),
    ).rejects.toThrow("connection reset");
    expect(seen).toEqual(["abc"]);

    const cut = new PassThrough();
    setTimeout(() => cut.destroy(), 10);
    await expect(
      (async () => {
        for await (const _ of chunksOf(cut)) void _;
      })(),
    ).rejects.toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  it("leaving the loop early destroys the stream", async () => {
    const stream = new PassThrough();
    stream.write(Buffer.from("one"));
    stream.write(Buffer.from("two"));
    for await (const c of chunksOf(stream)) {
      expect(c.toString()).toBe("one");
      break;
    }
    expect(stream.destroyed).toBe(true);
  });
});
