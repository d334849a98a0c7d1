// age (C2SP age v1) with the work split by what each side does well: the age-encryption library
// writes and reads the header (recipient stanzas, X25519, the header HMAC), and node:crypto runs the
// payload's STREAM construction, whose ChaCha20-Poly1305 is native there and pure JavaScript in the
// library (about 12 CPU-s/GiB against 0.8). The payload follows the spec to the byte, so what is
// written is what `age` writes and reads (test/integration/encryption-interop.test.ts):
//   payload key = HKDF-SHA-256(ikm = file key, salt = 16-byte nonce, info = "payload"), 32 bytes;
//   chunks of 64 KiB plaintext, each sealed with a 12-byte nonce = 11-byte big-endian counter +
//   a flag byte, 1 on the last chunk only; the last chunk is full when the plaintext is an exact
//   multiple of 64 KiB (never an extra empty chunk), and empty only when the whole plaintext is.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { ByteQueue } from "./byte-queue.js";

const CHUNK = 64 * 1024;
const TAG = 16;
const SEALED_CHUNK = CHUNK + TAG;
const NONCE_BYTES = 16;
/** Far above any real header (an X25519 stanza is ~110 bytes, a post-quantum one ~1.6 KiB). */
const MAX_HEADER_BYTES = 1 << 20;
const NEWLINE = 0x0a;

function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", fileKey, nonce, "payload", 32));
}

/** The STREAM nonce of chunk `counter` (2^48 chunks, 16 EiB, is beyond any snapshot). */
function chunkNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** One sealed chunk as its ciphertext and its tag, handed on as they are (no joining copy). */
function seal(key: Buffer, counter: number, last: boolean, plain: Buffer): [Buffer, Buffer] {
  const c = createCipheriv("chacha20-poly1305", key, chunkNonce(counter, last), { authTagLength: TAG });
  const body = c.update(plain);
  c.final();
  return [body, c.getAuthTag()];
}

/**
 * The plaintext of one sealed chunk given as the pieces it arrived in (decrypted piece by piece,
 * without joining them), or null when it does not authenticate under this nonce.
 */
function open(key: Buffer, counter: number, last: boolean, sealed: Buffer[]): Buffer[] | null {
  const d = createDecipheriv("chacha20-poly1305", key, chunkNonce(counter, last), { authTagLength: TAG });
  const size = sealed.reduce((n, p) => n + p.length, 0);
  const plain: Buffer[] = [];
  let at = 0;
  const tag: Buffer[] = [];
  for (const p of sealed) {
    const body = Math.max(0, Math.min(p.length, size - TAG - at));
    if (body) plain.push(d.update(body === p.length ? p : p.subarray(0, body)));
    if (body < p.length) tag.push(p.subarray(body));
    at += p.length;
  }
  d.setAuthTag(tag.length === 1 ? tag[0]! : Buffer.concat(tag));
  try {
    // Nothing of a chunk is handed on before its tag is checked here.
    d.final();
  } catch {
    return null;
  }
  return plain;
}

/**
 * The header for `recipients` (age1... strings, validated by `check` beforehand) and the file key
 * it wraps. The library makes both; a recipient of our own that adds no stanza hands us the key.
 */
async function header(recipients: readonly string[]): Promise<{ header: Uint8Array; fileKey: Uint8Array }> {
  const { Encrypter } = await import("age-encryption");
  const e = new Encrypter();
  let fileKey: Uint8Array | undefined;
  e.addRecipient({
    wrapFileKey: (k: Uint8Array) => {
      fileKey = Uint8Array.from(k);
      return [];
    },
  });
  for (const r of recipients) e.addRecipient(r);
  // The library's whole file for an empty payload: header, its 16-byte nonce, one sealed empty
  // chunk. Only the header is kept; the payload nonce is drawn anew below.
  const whole = await e.encrypt(new Uint8Array(0));
  if (!fileKey) throw new Error("age: the file key was not handed to the recipients");
  return { header: whole.subarray(0, whole.length - NONCE_BYTES - TAG), fileKey };
}

/** Throws the library's reason when `recipient` is not an age recipient it can encrypt to. */
export async function checkAgeRecipient(recipient: string): Promise<void> {
  const { Encrypter } = await import("age-encryption");
  new Encrypter().addRecipient(recipient);
}

/** Encrypts a plaintext web stream to age ciphertext for `recipients`, 64 KiB at a time. */
export async function ageEncrypt(recipients: readonly string[], plain: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
  const { header: head, fileKey } = await header(recipients);
  const nonce = randomBytes(NONCE_BYTES);
  const key = payloadKey(fileKey, nonce);
  const reader = plain.getReader();
  const queued = new ByteQueue();
  // Plaintext gathered across input pieces for one chunk: the cipher reads it before the next take.
  const scratch = Buffer.allocUnsafe(CHUNK);
  let counter = 0;
  let ended = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controller.enqueue(Buffer.concat([head, nonce]));
      },
      async pull(controller) {
        // A chunk is sealed as not-last only once a byte beyond it is known to exist.
        while (!ended && queued.length <= CHUNK) {
          const r = await reader.read();
          if (r.done) ended = true;
          else queued.push(r.value);
        }
        if (queued.length > CHUNK) {
          for (const b of seal(key, counter++, false, queued.take(CHUNK, scratch))) controller.enqueue(b);
          return;
        }
        for (const b of seal(key, counter++, true, queued.take(queued.length, scratch))) if (b.length) controller.enqueue(b);
        controller.close();
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Decrypts an age ciphertext web stream with `secrets` (AGE-SECRET-KEY-1... strings). Returns once
 * the header is read and its HMAC checked (a wrong identity or a damaged header throws here); the
 * payload is then checked chunk by chunk as it is read, and a damaged, truncated or extended one
 * errors the returned stream before any byte of the failing chunk comes out.
 */
export async function ageDecrypt(secrets: readonly string[], cipher: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
  const reader = cipher.getReader();
  const queued = new ByteQueue();
  let ended = false;
  const more = async (): Promise<boolean> => {
    const r = await reader.read();
    if (r.done) ended = true;
    else queued.push(r.value);
    return !r.done;
  };
  try {
    let headerEnd = -1;
    for (let scanned = 0; headerEnd < 0;) {
      const all = queued.peekAll();
      // The header ends with the MAC line, the first line starting "---" (stanza lines start "-> ",
      // their bodies are base64, which has no '-').
      for (let nl = all.indexOf(NEWLINE, scanned); nl >= 0 && headerEnd < 0; nl = all.indexOf(NEWLINE, scanned)) {
        if (all.subarray(scanned, scanned + 3).toString("latin1") === "---") headerEnd = nl + 1;
        scanned = nl + 1;
      }
      if (headerEnd >= 0) break;
      if (queued.length > MAX_HEADER_BYTES) throw new Error(`not an age file: no header end in its first ${MAX_HEADER_BYTES} bytes`);
      if (!(await more())) throw new Error("not an age file, or truncated in its header");
    }
    const { Decrypter } = await import("age-encryption");
    const d = new Decrypter();
    for (const s of secrets) d.addIdentity(s);
    const fileKey = await d.decryptHeader(Uint8Array.from(queued.take(headerEnd)));
    while (queued.length < NONCE_BYTES) {
      if (!(await more())) throw new Error("truncated after its header (no payload nonce)");
    }
    const key = payloadKey(fileKey, queued.take(NONCE_BYTES));
    let counter = 0;
    return new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          while (!ended && queued.length <= SEALED_CHUNK) await more();
          if (queued.length > SEALED_CHUNK) {
            // A full chunk with more after it: not the last one.
            const plain = open(key, counter, false, queued.takeParts(SEALED_CHUNK));
            if (!plain) throw new Error(`payload chunk ${counter} failed authentication: the ciphertext is damaged, or data follows its last chunk`);
            counter++;
            for (const p of plain) controller.enqueue(p);
            return;
          }
          if (queued.length < TAG) throw new Error(counter === 0 && !queued.length ? "truncated: no payload after the nonce" : `truncated in payload chunk ${counter}`);
          if (queued.length === TAG && counter > 0) throw new Error(`payload chunk ${counter} is an empty last chunk, which age never writes`);
          const plain = open(key, counter, true, queued.takeParts(queued.length));
          if (!plain) throw new Error(`payload chunk ${counter} failed authentication as the last chunk: the ciphertext is damaged or truncated`);
          for (const p of plain) if (p.length) controller.enqueue(p);
          controller.close();
        },
        cancel(reason) {
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
  } catch (err) {
    reader.cancel().catch(() => undefined);
    throw err;
  }
}
