// Reads the OpenPGP message shape we write (engine/crypto/openpgp-stream.ts) with node:crypto for
// the bulk: session-key packets, then a v1 integrity-protected data packet holding one literal
// data packet. OpenPGP.js decrypts the session key (the keys are its job); AES-CFB and the SHA-1
// modification detection code run natively. Every other shape (compressed, as gpg writes by
// default; AEAD; old symmetric packets; signed) is handed to OpenPGP.js whole, replayed from the
// first byte, before any plaintext is released.
import { createDecipheriv, createHash } from "node:crypto";
import type * as openpgp from "openpgp";

const NODE_CFB: Record<string, string> = { aes128: "aes-128-cfb", aes192: "aes-192-cfb", aes256: "aes-256-cfb" };
const BLOCK = 16;
/** The MDC packet at the end of the decrypted data: 0xD3 0x14 and a 20-byte SHA-1. */
const MDC_BYTES = 22;
const MAX_PIECE = 1 << 20;

/** Bytes from an async source, taken as views where one piece holds them. */
class Input {
  private parts: Buffer[] = [];
  private length = 0;
  private ended = false;

  constructor(private readonly next: () => Promise<Buffer | null>) {}

  async fill(n: number): Promise<boolean> {
    while (this.length < n && !this.ended) {
      const b = await this.next();
      if (!b) this.ended = true;
      else if (b.length) {
        this.parts.push(b);
        this.length += b.length;
      }
    }
    return this.length >= n;
  }

  async bytes(n: number): Promise<Buffer> {
    if (!(await this.fill(n))) throw new Error("truncated");
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n;) at += this.piecesInto(out, at, n - at);
    return out;
  }

  /** Up to `max` bytes as a view of what is there (reading more only when nothing is), or null at the end. */
  async piece(max: number): Promise<Buffer | null> {
    if (!(await this.fill(1))) return null;
    const p = this.parts[0]!;
    const k = Math.min(p.length, max);
    if (k === p.length) this.parts.shift();
    else this.parts[0] = p.subarray(k);
    this.length -= k;
    return p.subarray(0, k);
  }

  private piecesInto(out: Buffer, at: number, want: number): number {
    const p = this.parts[0]!;
    const k = Math.min(p.length, want);
    p.copy(out, at, 0, k);
    if (k === p.length) this.parts.shift();
    else this.parts[0] = p.subarray(k);
    this.length -= k;
    return k;
  }
}

interface PacketHeader {
  tag: number;
  raw: Buffer;
  /** Body length, or of its first part when `partial`. */
  len: number;
  partial: boolean;
  /** Old-format indeterminate length: the body runs to the end of what holds it. */
  toEnd: boolean;
}

async function newFormatLength(inp: Input, raw: number[]): Promise<{ len: number; partial: boolean }> {
  const l1 = (await inp.bytes(1))[0]!;
  raw.push(l1);
  if (l1 < 192) return { len: l1, partial: false };
  if (l1 < 224) {
    const l2 = (await inp.bytes(1))[0]!;
    raw.push(l2);
    return { len: ((l1 - 192) << 8) + l2 + 192, partial: false };
  }
  if (l1 === 255) {
    const b = await inp.bytes(4);
    raw.push(...b);
    return { len: b.readUInt32BE(0), partial: false };
  }
  return { len: 1 << (l1 & 0x1f), partial: true };
}

async function packetHeader(inp: Input): Promise<PacketHeader> {
  const b0 = (await inp.bytes(1))[0]!;
  if (!(b0 & 0x80)) throw new Error("not an OpenPGP packet");
  const raw = [b0];
  if (b0 & 0x40) {
    const { len, partial } = await newFormatLength(inp, raw);
    return { tag: b0 & 0x3f, raw: Buffer.from(raw), len, partial, toEnd: false };
  }
  const type = b0 & 3;
  if (type === 3) return { tag: (b0 >> 2) & 0xf, raw: Buffer.from(raw), len: 0, partial: false, toEnd: true };
  const b = await inp.bytes([1, 2, 4][type]!);
  raw.push(...b);
  return { tag: (b0 >> 2) & 0xf, raw: Buffer.from(raw), len: b.readUIntBE(0, b.length), partial: false, toEnd: false };
}

/** One packet's body, across its partial body lengths. */
class Body {
  private left: number;
  private partial: boolean;

  constructor(
    private readonly inp: Input,
    private readonly h: PacketHeader,
  ) {
    this.left = h.len;
    this.partial = h.partial;
  }

  async piece(max = MAX_PIECE): Promise<Buffer | null> {
    if (this.h.toEnd) return this.inp.piece(max);
    while (this.left === 0) {
      if (!this.partial) return null;
      ({ len: this.left, partial: this.partial } = await newFormatLength(this.inp, []));
    }
    const p = await this.inp.piece(Math.min(max, this.left));
    if (!p) throw new Error("truncated inside a packet");
    this.left -= p.length;
    return p;
  }

  async bytes(n: number): Promise<Buffer> {
    const out: Buffer[] = [];
    for (let got = 0; got < n;) {
      const p = await this.piece(n - got);
      if (!p) throw new Error("truncated inside a packet");
      out.push(p);
      got += p.length;
    }
    return Buffer.concat(out, n);
  }
}

/**
 * Decrypts an OpenPGP binary message with `keys`. `other` decrypts what this reader does not (it
 * gets the whole message again). Plaintext is released as it is decrypted; the modification
 * detection code is checked at the end and a mismatch errors the stream (as OpenPGP.js's
 * `allowUnauthenticatedStream` does: every consumer checks the plaintext's SHA-256 first).
 */
export async function pgpDecrypt(
  keys: openpgp.PrivateKey[],
  cipher: ReadableStream<Uint8Array>,
  other: (whole: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>,
): Promise<ReadableStream<Uint8Array>> {
  const reader = cipher.getReader();
  let recorded: Buffer[] | undefined = [];
  const outer = new Input(async () => {
    const r = await reader.read();
    if (r.done) return null;
    const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    recorded?.push(b);
    return b;
  });
  const handOver = () => {
    const replay = recorded!;
    recorded = undefined;
    let i = 0;
    return other(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          if (i < replay.length) return c.enqueue(replay[i++]!);
          const r = await reader.read();
          if (r.done) c.close();
          else c.enqueue(r.value);
        },
        cancel: (why) => reader.cancel(why),
      }),
    );
  };
  try {
    const sessionPackets: Buffer[] = [];
    let h: PacketHeader;
    for (;;) {
      h = await packetHeader(outer);
      const definite = !h.partial && !h.toEnd;
      if (h.tag === 1 && definite) sessionPackets.push(h.raw, await outer.bytes(h.len));
      else if (h.tag === 10 && definite)
        await outer.bytes(h.len); // a marker packet
      else break;
    }
    const body = new Body(outer, h);
    if (h.tag !== 18 || !sessionPackets.length || (await body.bytes(1))[0] !== 1) return await handOver();
    const pgp = await import("openpgp");
    const message = await pgp.readMessage({ binaryMessage: Buffer.concat(sessionPackets) });
    const [session] = await pgp.decryptSessionKeys({ message, decryptionKeys: keys });
    const cfb = session?.algorithm ? NODE_CFB[session.algorithm] : undefined;
    if (!session || !cfb) return await handOver();

    const decipher = createDecipheriv(cfb, session.data, Buffer.alloc(BLOCK));
    const mdc = createHash("sha1");
    // The decrypted data minus its last 22 bytes, which must be the MDC packet over all before it.
    async function* released(): AsyncGenerator<Buffer> {
      let held = Buffer.alloc(0);
      for (let p = await body.piece(); p; p = await body.piece()) {
        let d = decipher.update(p);
        if (d.length < MDC_BYTES) d = Buffer.concat([held, d]);
        else if (held.length) {
          mdc.update(held);
          yield held;
        }
        held = d.subarray(d.length - Math.min(d.length, MDC_BYTES));
        const out = d.subarray(0, d.length - held.length);
        if (out.length) {
          mdc.update(out);
          yield out;
        }
      }
      if (await outer.fill(1)) throw new Error("data follows the encrypted data packet");
      if (held.length !== MDC_BYTES || held[0] !== 0xd3 || held[1] !== 0x14) throw new Error("no modification detection code at the end: truncated or damaged");
      mdc.update(held.subarray(0, 2));
      if (!mdc.digest().equals(held.subarray(2))) throw new Error("modification detection code mismatch: the message is damaged or was tampered with");
    }
    const plain = released();
    const inner = new Input(async () => {
      const r = await plain.next();
      return r.done ? null : r.value;
    });
    const prefix = await inner.bytes(BLOCK + 2);
    if (prefix[BLOCK] !== prefix[BLOCK - 2] || prefix[BLOCK + 1] !== prefix[BLOCK - 1]) throw new Error("the session key does not decrypt the data: damaged");
    const lit = await packetHeader(inner);
    if (lit.tag !== 11) {
      await plain.return(undefined);
      return await handOver();
    }
    recorded = undefined;
    const literal = new Body(inner, lit);
    const nameLength = (await literal.bytes(2))[1]!;
    await literal.bytes(nameLength + 4); // the file name and date: not ours to keep
    return new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          const p = await literal.piece();
          if (p) return c.enqueue(p);
          // Only the MDC (checked as the decrypted data ends) may follow the literal packet.
          if (await inner.fill(1)) throw new Error("a packet follows the literal data");
          c.close();
        },
        cancel: (why) => reader.cancel(why),
      },
      { highWaterMark: 0 },
    );
  } catch (err) {
    reader.cancel().catch(() => undefined);
    throw err;
  }
}
