// OpenPGP encryption with the work split by what each side does well: OpenPGP.js reads the keys,
// picks the session key's cipher from their preferences and writes the session-key packets (PKESK,
// one per recipient); node:crypto runs the bulk. OpenPGP.js's own streaming encryption already
// calls native AES and SHA-1, but through its stream plumbing it costs ~6.6 CPU-s/GiB against
// ~2.2 for the two primitives. The message is the one OpenPGP.js writes (RFC 4880 / 9580 v1
// integrity-protected data, read by gpg and OpenPGP.js, test/integration/encryption-interop.test.ts):
//   PKESK packet(s) | SEIPD v1 packet (tag 18): version 1, then AES-CFB with a zero IV over
//     random prefix (block size + its last 2 bytes repeated) | literal data packet (tag 11, binary,
//     no file name, the date) | MDC packet (0xD3 0x14, SHA-1 of everything before it incl. 0xD3 0x14).
// Both packets are streamed with partial body lengths of 64 KiB and a final regular length.
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import type * as openpgp from "openpgp";
import { ByteQueue } from "./byte-queue.js";

const PART = 1 << 16;
/** A partial body length header: 0xE0 + log2 of the part's length. */
const PARTIAL_64K = 0xe0 + 16;
const TAG_LITERAL = 11;
const TAG_SEIPD = 18;
const MDC_HEADER = Buffer.from([0xd3, 0x14]);
/** The session key ciphers node:crypto runs in CFB mode, by OpenPGP.js's names. */
const NODE_CFB: Record<string, string> = { aes128: "aes-128-cfb", aes192: "aes-192-cfb", aes256: "aes-256-cfb" };

/** A regular (final) new-format body length. */
function finalLength(n: number): Buffer {
  if (n < 192) return Buffer.from([n]);
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xff;
  b.writeUInt32BE(n, 1);
  return b;
}

/**
 * One packet's body in, the framed packet out: its tag byte first, then 64 KiB parts behind
 * partial length headers while more may follow, and the rest behind a final length at `end`.
 * `joined`: each part comes out as one buffer (one copy; what is handed downstream), otherwise as
 * its header and slices of the input (no copy; what goes on into the cipher).
 */
class PacketFramer {
  private readonly body = new ByteQueue();
  private started = false;

  constructor(
    private readonly tag: number,
    private readonly joined: boolean,
  ) {}

  push(b: Buffer, out: Buffer[]): void {
    this.body.push(b);
    // Strictly more than a part: the last part is always sent with a final length.
    while (this.body.length > PART) this.emit(Buffer.from([PARTIAL_64K]), PART, out);
  }

  end(out: Buffer[]): void {
    this.emit(finalLength(this.body.length), this.body.length, out);
  }

  private emit(length: Buffer, n: number, out: Buffer[]): void {
    const head = this.started ? length : Buffer.concat([Buffer.from([0xc0 | this.tag]), length]);
    this.started = true;
    const pieces = [head, ...this.body.takeParts(n)];
    if (this.joined) out.push(Buffer.concat(pieces, head.length + n));
    else out.push(...pieces);
  }
}

/**
 * The native writer's plan for `keys`: the session key and its packets, or undefined when the
 * keys' preferences lead OpenPGP.js to a message this writer does not make (AEAD / SEIPD v2, or a
 * cipher other than AES) — the caller then lets OpenPGP.js write it, so the format stays its choice.
 */
export async function nativePgpPlan(keys: openpgp.PublicKey[]): Promise<{ cfb: string; key: Uint8Array; packets: Uint8Array } | undefined> {
  const pgp = await import("openpgp");
  const session = await pgp.generateSessionKey({ encryptionKeys: keys });
  const cfb = NODE_CFB[session.algorithm];
  if (session.aeadAlgorithm || !cfb) return undefined;
  const packets = await pgp.encryptSessionKey({ data: session.data, algorithm: session.algorithm, encryptionKeys: keys, format: "binary" });
  return { cfb, key: session.data, packets };
}

/** Encrypts a plaintext web stream to an OpenPGP binary message under `plan`, 64 KiB at a time. */
export function pgpEncrypt(plan: { cfb: string; key: Uint8Array; packets: Uint8Array }, plain: ReadableStream<Uint8Array>, date = new Date()): ReadableStream<Uint8Array> {
  const blockSize = 16;
  const cipher = createCipheriv(plan.cfb, plan.key, Buffer.alloc(blockSize));
  const mdc = createHash("sha1");
  const literal = new PacketFramer(TAG_LITERAL, false);
  const seipd = new PacketFramer(TAG_SEIPD, true);
  const reader = plain.getReader();
  let pending: Buffer[] = [];
  /** Plaintext packet bytes into the MDC hash and the cipher; their ciphertext into the SEIPD packet. */
  const seal = (inner: Buffer[]) => {
    for (const b of inner) {
      mdc.update(b);
      seipd.push(cipher.update(b), pending);
    }
  };
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const prefix = randomBytes(blockSize + 2);
        prefix.copy(prefix, blockSize, blockSize - 2, blockSize);
        seipd.push(Buffer.from([1]), pending);
        const head = Buffer.alloc(6);
        head.write("b", 0, "latin1"); // binary data, then a file name of length 0
        head.writeUInt32BE(Math.floor(date.getTime() / 1000), 2);
        const inner: Buffer[] = [prefix];
        literal.push(head, inner);
        seal(inner);
        controller.enqueue(Buffer.concat([plan.packets, ...pending]));
        pending = [];
      },
      async pull(controller) {
        const inner: Buffer[] = [];
        while (!pending.length) {
          const r = await reader.read();
          if (r.done) {
            literal.end(inner);
            seal(inner);
            seal([MDC_HEADER]);
            // The hash is of the plaintext, the packet holding it is encrypted like the rest.
            seipd.push(cipher.update(mdc.digest()), pending);
            const tail = cipher.final();
            if (tail.length) seipd.push(tail, pending);
            seipd.end(pending);
            controller.enqueue(Buffer.concat(pending));
            controller.close();
            return;
          }
          literal.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength), inner);
          seal(inner.splice(0));
        }
        for (const b of pending) controller.enqueue(b);
        pending = [];
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
