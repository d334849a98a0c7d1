// The byte queue of the streamed ciphers (engine/crypto/age-stream.ts, openpgp-stream.ts): their
// chunks and packet parts are cut at fixed sizes that the incoming chunks do not respect.

/** Bytes received but not yet used, kept as the chunks they came in (no copy until taken). */
export class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;

  push(b: Uint8Array): void {
    if (!b.byteLength) return;
    this.parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    this.length += b.byteLength;
  }

  /**
   * The first `n` bytes (n <= length), removed from the queue: a view when one piece holds them,
   * else copied into `scratch` (when given and large enough; valid until the next take) or anew.
   */
  take(n: number, scratch?: Buffer): Buffer {
    const first = this.parts[0];
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
    } else {
      out = scratch && scratch.length >= n ? scratch.subarray(0, n) : Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const p = this.parts[0]!;
        const k = Math.min(p.length, n - at);
        p.copy(out, at, 0, k);
        at += k;
        if (k === p.length) this.parts.shift();
        else this.parts[0] = p.subarray(k);
      }
    }
    this.length -= n;
    return out;
  }

  /** The first `n` bytes (n <= length) as the pieces they came in, removed from the queue (no copy). */
  takeParts(n: number): Buffer[] {
    const out: Buffer[] = [];
    for (let left = n; left > 0;) {
      const p = this.parts[0]!;
      const k = Math.min(p.length, left);
      out.push(k === p.length ? p : p.subarray(0, k));
      if (k === p.length) this.parts.shift();
      else this.parts[0] = p.subarray(k);
      left -= k;
    }
    this.length -= n;
    return out;
  }

  /** Everything queued, as one buffer (for the header, which is small). */
  peekAll(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts)];
    return this.parts[0] ?? Buffer.alloc(0);
  }
}
