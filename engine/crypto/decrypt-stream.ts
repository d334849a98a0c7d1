import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { IntegrityError } from "../errors.js";
import type { EncryptionInfo } from "./encryptor.js";
import { decryptWeb, type Identities } from "./identities.js";

/** The stored (ciphertext) object's size and SHA-256, known once the plaintext stream ended. */
export interface CiphertextTally {
  bytes: number;
  sha256(): string;
}

/**
 * Decrypts a download as it passes: the ciphertext is hashed (the manifest's `sha256`/`bytes` are
 * the stored object's) and decrypted chunk by chunk; the result is a Node stream of plaintext.
 * A failure of the decryption itself (a corrupt or truncated object) is an IntegrityError; a
 * failure of the download stays the download's. Destroying the result destroys the download.
 */
export async function decryptingStream(info: EncryptionInfo, ids: Identities, cipher: Readable, where: string): Promise<{ plain: Readable; stored: CiphertextTally }> {
  const hash = createHash("sha256");
  let digest: string | undefined;
  const stored: CiphertextTally = {
    bytes: 0,
    sha256: () => (digest ??= hash.digest("hex")),
  };
  let downloadFailed = false;
  cipher.on("error", () => (downloadFailed = true));
  async function* tallied(): AsyncGenerator<Uint8Array> {
    for await (const chunk of cipher) {
      const b = chunk as Buffer;
      hash.update(b);
      stored.bytes += b.length;
      yield new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
  }
  // A web stream straight over the download (Readable.toWeb copies every chunk on its way).
  const chunks = tallied();
  const web = new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        const r = await chunks.next();
        if (r.done) c.close();
        else c.enqueue(r.value);
      },
      async cancel() {
        await chunks.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
  const integrity = (err: unknown) =>
    downloadFailed || err instanceof IntegrityError
      ? err
      : new IntegrityError(`${where} cannot be decrypted (${info.format}): ${err instanceof Error ? err.message : String(err)} — the object is corrupt or truncated`, {
          stage: "decrypt",
          cause: err,
        });
  let plainWeb: ReadableStream<Uint8Array>;
  try {
    plainWeb = await decryptWeb(info, ids, web);
  } catch (err) {
    cipher.destroy();
    throw integrity(err);
  }
  async function* plaintext(): AsyncGenerator<Buffer> {
    const reader = plainWeb.getReader();
    try {
      for (;;) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (err) {
          throw integrity(err);
        }
        if (r.done) return;
        yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      }
    } finally {
      reader.cancel().catch(() => undefined);
      cipher.destroy();
    }
  }
  return { plain: Readable.from(plaintext(), { objectMode: false }), stored };
}
