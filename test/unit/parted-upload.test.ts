import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { finished } from "node:stream/promises";

import type { OwnUploads, UploadOptions } from "../../engine/storage/object-store.js";
import { PartedUpload, type PartCheck } from "../../engine/storage/parted-upload.js";

// The part machinery every parted store shares (S3, Azure), with the store's side kept in memory:
// the stores themselves are tested against real servers (test/storage); what is tested here is the
// limit on parts, which a real server would need hundreds of GiB to reach.
class PartsInMemory extends PartedUpload<string> {
  readonly sent: { part: number; bytes: number; md5: string }[] = [];
  completed = false;

  constructor(opts: UploadOptions, maxParts: number) {
    super(opts, () => undefined, { max: maxParts, parts: "blocks", named: "the test store's limit" });
  }

  ownUploads(): OwnUploads {
    return { ids: [], unknown: false };
  }

  protected urlOf(key: string): string {
    return `mem://${key}`;
  }

  protected newCheck(): PartCheck<string> {
    const h = createHash("md5");
    return { update: (b) => h.update(b), digest: () => h.digest("hex") };
  }

  protected async sendPart(_key: string, part: number, body: Buffer, md5: string): Promise<void> {
    this.sent.push({ part, bytes: body.length, md5 });
  }

  protected async complete(): Promise<void> {
    await this.flushParts();
    this.completed = true;
    this.result = { key: await this.key };
  }
}

const KiB = 1024;

async function write(upload: PartsInMemory, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(3 * KiB, 7);
  for (let left = bytes; left > 0; left -= chunk.length) {
    if (!upload.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise((r) => upload.once("drain", r));
  }
  upload.end();
  await finished(upload);
}

describe("parted uploads: the store's limit on parts", () => {
  it("doubles the part size every partsPerSize parts, so a stream of unknown size fits the limit", async () => {
    const upload = new PartsInMemory({ key: "k", partSize: 4 * KiB, queueSize: 2, partsPerSize: 2 }, 6);
    // 2 x 4 + 2 x 8 + 2 x 16 KiB = 56 KiB in exactly the limit's 6 parts.
    await write(upload, 56 * KiB);
    expect(upload.completed).toBe(true);
    expect(upload.sent.map((p) => p.bytes / KiB)).toEqual([4, 4, 8, 8, 16, 16]);
  });

  it("fails at the part past the limit, naming the object, the limit and the part size reached (not the size of the bytes left over); the object is never completed", async () => {
    const upload = new PartsInMemory({ key: "k", partSize: 4 * KiB, queueSize: 2, partsPerSize: 2 }, 6);
    const err = await write(upload, 56 * KiB + 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe("the upload of mem://k needs more than 6 blocks (the test store's limit), even with blocks grown to 16.0 KiB");
    expect(upload.storeError).toBe(err);
    expect(upload.completed).toBe(false);
    expect(upload.result).toBeUndefined();
    expect(upload.sent.map((p) => p.part)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
