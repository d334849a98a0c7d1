// Each part of a backup's multipart upload carries a CRC32 that S3 checks on arrival, and the
// payload is not hashed again for the signature (stages/upload.ts). Against the shared real S3 server.
import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { CreateBucketCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { s3For, s3StoreOn, sharedEnv } from "../support/env.js";

const MiB = 1024 * 1024;
const bucket = `upload-crc-${Date.now()}`;

interface SentPart {
  partNumber: number;
  crcHeader?: string;
  payloadHeader?: string;
  bodyCrc: string;
}

const crcBase64 = (b: Uint8Array) => {
  const x = Buffer.alloc(4);
  x.writeUInt32BE(crc32(b) >>> 0);
  return x.toString("base64");
};

/** An S3 client that records every part upload as sent, and damages the body of `corrupt` part numbers' first attempt. */
function spyingClient(corrupt: Set<number>) {
  const s3 = s3For();
  const sent: SentPart[] = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers: Record<string, string>; body?: unknown; query?: Record<string, string> };
      if (context.commandName === "UploadPartCommand" && req.body instanceof Uint8Array) {
        const partNumber = Number(req.query?.partNumber);
        if (corrupt.delete(partNumber)) {
          const damaged = Buffer.from(req.body);
          damaged[1000] ^= 0xff;
          req.body = damaged;
        }
        sent.push({ partNumber, crcHeader: req.headers["x-amz-checksum-crc32"], payloadHeader: req.headers["x-amz-content-sha256"], bodyCrc: crcBase64(req.body as Uint8Array) });
      }
      return next(args);
    },
    { step: "finalizeRequest", priority: "low", name: "testPartSpy" },
  );
  return { s3, sent };
}

async function upload(s3: ReturnType<typeof s3For>, key: string, data: Buffer) {
  const sink = s3StoreOn(s3, bucket).createUpload({ key, partSize: 5 * MiB, queueSize: 2 });
  await pipeline(Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]), sink);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { sink, stored: Buffer.from(await got.Body!.transformToByteArray()) };
}

describe("part checksums of the backup upload", () => {
  const data = randomBytes(12 * MiB);

  beforeAll(async () => {
    const s3 = s3For();
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();
  });

  it("sends every part with its CRC32 and an unsigned payload (no second SHA-256 of the part)", async () => {
    const { s3, sent } = spyingClient(new Set());
    const { stored } = await upload(s3, "clean.snap", data);
    s3.destroy();
    expect(stored.equals(data)).toBe(true);
    expect(sent.map((p) => p.partNumber).sort()).toEqual([1, 2, 3]);
    for (const p of sent) {
      expect(p.crcHeader).toBe(p.bodyCrc);
      expect(p.payloadHeader).toBe("UNSIGNED-PAYLOAD");
    }
  });

  it("a part damaged on the way is refused by S3 and sent again, so the object is intact", async () => {
    const { s3, sent } = spyingClient(new Set([2]));
    const kind = sharedEnv().s3!.kind;
    const { sink, stored } = await upload(s3, "damaged.snap", data);
    s3.destroy();
    const part2 = sent.filter((p) => p.partNumber === 2);
    // The damaged attempt went out with the CRC32 of the real bytes, not of what was sent.
    expect(part2[0]!.crcHeader).not.toBe(part2[0]!.bodyCrc);
    if (kind === "seaweedfs") {
      // SeaweedFS (like AWS S3) checks x-amz-checksum-crc32: BadDigest, and the sink sends the part again.
      expect(sink.partRetries).toBe(1);
      expect(part2).toHaveLength(2);
      expect(stored.equals(data)).toBe(true);
    } else {
      // moto checks no part checksum: what arrived is what it stored (why the tests default to SeaweedFS).
      expect(sink.partRetries).toBe(0);
      expect(stored.equals(data)).toBe(false);
    }
  });
});
