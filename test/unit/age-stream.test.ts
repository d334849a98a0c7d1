import { createHash, randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { ageDecrypt, ageEncrypt } from "../../engine/crypto/age-stream.js";

const KiB = 1024;
const CHUNK = 64 * KiB;
const SEALED = CHUNK + 16;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A web stream of `data` in pieces of `piece` bytes (odd sizes cross chunk boundaries anywhere). */
function webOf(data: Uint8Array, piece = 10_007): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= data.length) return c.close();
      c.enqueue(data.slice(at, at + piece));
      at += piece;
    },
  });
}

async function all(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = [];
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) out.push(c);
  return Buffer.concat(out);
}

let secret: string;
let recipient: string;
const encrypt = async (data: Uint8Array, piece?: number) => all(await ageEncrypt([recipient], webOf(data, piece)));
const decrypt = async (cipher: Uint8Array, piece?: number) => all(await ageDecrypt([secret], webOf(cipher, piece)));
/** Where the payload starts: after the header's MAC line and the 16-byte nonce. */
const payloadStart = (cipher: Buffer) => cipher.indexOf("\n", cipher.indexOf("\n---") + 1) + 1 + 16;

beforeAll(async () => {
  secret = await generateX25519Identity();
  recipient = await identityToRecipient(secret);
});

describe("age payload with node:crypto (STREAM, ChaCha20-Poly1305)", () => {
  // The sizes around the 64 KiB chunk: the last chunk is full on an exact multiple, empty only
  // for an empty file, and the ciphertext size says which (16 bytes of tag per chunk).
  const sizes: [string, number, number][] = [
    ["empty", 0, 1],
    ["1 byte", 1, 1],
    ["64 KiB - 1", CHUNK - 1, 1],
    ["exactly 64 KiB", CHUNK, 1],
    ["64 KiB + 1", CHUNK + 1, 2],
    ["exactly 128 KiB", 2 * CHUNK, 2],
    ["3 MiB + 7", 3 * 1024 * KiB + 7, 49],
  ];
  for (const [name, size, chunks] of sizes) {
    it(`${name}: ${chunks} chunk(s); decrypts with ours and with the age-encryption library, and ours decrypts the library's`, async () => {
      const data = randomBytes(size);
      const cipher = await encrypt(data);
      expect(cipher.subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");
      expect(cipher.length - payloadStart(cipher)).toBe(size + 16 * chunks);
      expect(sha(await decrypt(cipher))).toBe(sha(data));
      const lib = new Decrypter();
      lib.addIdentity(secret);
      expect(sha(await lib.decrypt(cipher))).toBe(sha(data));
      const e = new Encrypter();
      e.addRecipient(recipient);
      const theirs = await e.encrypt(data);
      expect(sha(await decrypt(theirs, 4096))).toBe(sha(data));
    });
  }

  it("the ciphertext does not depend on how the plaintext is cut into pieces (7 bytes, 64 KiB, 1 MiB)", async () => {
    const data = randomBytes(2 * CHUNK + 5);
    for (const piece of [7, CHUNK, 1024 * KiB]) {
      const cipher = await encrypt(data, piece);
      expect(cipher.length - payloadStart(cipher)).toBe(data.length + 3 * 16);
      expect(sha(await decrypt(cipher, piece === 7 ? 333 : piece))).toBe(sha(data));
    }
  });

  it("every file has its own file key and nonce: the same plaintext twice gives different ciphertexts", async () => {
    const data = randomBytes(1000);
    expect(sha(await encrypt(data))).not.toBe(sha(await encrypt(data)));
  });

  describe("refuses what age refuses, before handing on any byte of the bad chunk", () => {
    let data: Buffer;
    let cipher: Buffer;
    let start: number;
    beforeAll(async () => {
      data = randomBytes(3 * CHUNK + 100);
      cipher = await encrypt(data);
      start = payloadStart(cipher);
    });

    /** The plaintext handed on before the failure, and the failure. */
    async function partial(bad: Uint8Array): Promise<{ got: number; err: unknown }> {
      let got = 0;
      try {
        for await (const c of (await ageDecrypt([secret], webOf(bad))) as unknown as AsyncIterable<Uint8Array>) got += c.length;
      } catch (err) {
        return { got, err };
      }
      return { got, err: undefined };
    }

    it("a flipped byte in the middle of the second chunk: the first chunk only comes out, then an authentication error", async () => {
      const bad = Buffer.from(cipher);
      bad[start + SEALED + SEALED / 2]! ^= 0x01;
      const { got, err } = await partial(bad);
      expect(got).toBe(CHUNK);
      expect(String(err)).toMatch(/payload chunk 1 failed authentication/);
    });

    it("a flipped byte in the last chunk's tag", async () => {
      const bad = Buffer.from(cipher);
      bad[bad.length - 1]! ^= 0x80;
      const { got, err } = await partial(bad);
      expect(got).toBe(3 * CHUNK);
      expect(String(err)).toMatch(/chunk 3 failed authentication as the last chunk/);
    });

    it("truncated on a chunk boundary (a full chunk not marked last), inside a chunk, or right after the nonce", async () => {
      expect(String((await partial(cipher.subarray(0, start + 2 * SEALED))).err)).toMatch(/chunk 1 failed authentication as the last chunk/);
      expect(String((await partial(cipher.subarray(0, start + SEALED + 10))).err)).toMatch(/truncated in payload chunk 1/);
      expect(String((await partial(cipher.subarray(0, start))).err)).toMatch(/truncated: no payload after the nonce/);
    });

    it("data after the last chunk (the last chunk, full or not, is then opened as a middle one and fails)", async () => {
      expect(String((await partial(Buffer.concat([cipher, Buffer.from("x")]))).err)).toMatch(/chunk 3 failed authentication as the last chunk/);
      const exact = await encrypt(randomBytes(CHUNK));
      expect(String((await partial(Buffer.concat([exact, Buffer.alloc(16)]))).err)).toMatch(/chunk 0 failed authentication: .*data follows its last chunk/);
    });

    it("a damaged header MAC, a wrong identity and something that is not age are refused before any payload", async () => {
      const mac = cipher.indexOf("\n---") + 6;
      const bad = Buffer.from(cipher);
      bad[mac] = bad[mac] === 0x41 ? 0x42 : 0x41;
      await expect(ageDecrypt([secret], webOf(bad))).rejects.toThrow(/invalid header HMAC/);
      await expect(ageDecrypt([await generateX25519Identity()], webOf(cipher))).rejects.toThrow(/no identity matched/);
      await expect(ageDecrypt([secret], webOf(Buffer.from("not an age file\n--- x\n")))).rejects.toThrow(/invalid version/);
      await expect(ageDecrypt([secret], webOf(Buffer.from("age-encryption.org/v1\n-> X25519 abc\n")))).rejects.toThrow(/truncated in its header/);
    });
  });
});
