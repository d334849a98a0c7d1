/**
 * Incremental reader of a Raft snapshot's `state.bin` (OpenBao `internal/physical/raft/fsm.go`,
 * `writeTo`): a stream of protobuf `StorageEntry` messages (sdk/plugin/pb: 1 key string,
 * 2 value bytes, 3 seal_wrap bool), each preceded by its length as an unsigned varint
 * (`varint.go`, the gogo delimited writer). Values are barrier-encrypted; only their size is used.
 *
 * The reader is fed the bytes chunk by chunk, as they come out of the archive, and holds at most
 * one key (keys are short paths) and a varint's bytes: value bytes are skipped, never copied, so
 * memory stays flat whatever the snapshot's size. A chunk boundary may fall anywhere.
 */

/** One storage entry: its key and the size of its (encrypted) value. */
export interface StateBinEntry {
  key: string;
  valueBytes: number;
  /** The value's bytes, only for the keys the parser was asked to keep (`keepValue`). */
  value?: Buffer;
}

/** Keys longer than this are not paths any backend writes: the framing must be off. */
const MAX_KEY_BYTES = 64 * 1024;
/** A kept value larger than this is not one of the small entries anyone keeps: only its size is read. */
const MAX_KEPT_VALUE_BYTES = 1024 * 1024;
/** OpenBao's reader refuses messages larger than this (math.MaxInt32). */
const MAX_MESSAGE_BYTES = 0x7fffffff;

type Phase =
  /** the entry's length prefix */
  | "length"
  /** a field tag inside the entry */
  | "tag"
  /** a length-delimited field's length */
  | "fieldLength"
  /** a varint field's value (skipped) */
  | "varintValue"
  /** bytes of the key, kept */
  | "key"
  /** bytes of a value asked for (`keepValue`), kept */
  | "value"
  /** bytes to skip: the value, or any other field */
  | "skip";

export class StateBinFormatError extends Error {}

export class StateBinParser {
  private phase: Phase = "length";
  /** The varint being read (value and shift); JS numbers are exact up to 2^53, far beyond MAX_MESSAGE_BYTES. */
  private varint = 0;
  private shift = 0;
  /** Bytes of the current entry not read yet. */
  private remaining = 0;
  private field = 0;
  /** Bytes still to take in the "key" or "skip" phase. */
  private want = 0;
  private keyParts: Buffer[] = [];
  private keyBytes = 0;
  private key: string | undefined;
  private valueBytes = 0;
  private value: Buffer | undefined;
  private valueParts: Buffer[] = [];
  /** Bytes consumed so far (for error messages). */
  private offset = 0;
  private entries = 0;

  /**
   * `keepValue`: the keys whose values the entry should carry (a few small ones, e.g. the seal's
   * stored keys); every other value is skipped, never copied. Protobuf writes field 1 (the key)
   * before field 2 (the value), so the key is known when its value starts.
   */
  constructor(
    private readonly onEntry: (entry: StateBinEntry) => void,
    private readonly keepValue?: (key: string) => boolean,
  ) {}

  /** Takes the next bytes of state.bin; throws StateBinFormatError when they cannot be entries. */
  write(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.phase) {
        case "key":
        case "value":
        case "skip": {
          const take = Math.min(this.want, n - i);
          if (this.phase === "key") this.keyParts.push(chunk.subarray(i, i + take));
          // A kept value is copied at once: it may span many chunks.
          else if (this.phase === "value") this.valueParts.push(Buffer.from(chunk.subarray(i, i + take)));
          i += take;
          this.want -= take;
          this.remaining -= take;
          if (this.want === 0) {
            if (this.phase === "key") {
              // Copy out of the chunk: the chunk's memory belongs to the stream.
              this.key = Buffer.concat(this.keyParts, this.keyBytes).toString("utf8");
              this.keyParts = [];
            } else if (this.phase === "value") {
              this.value = Buffer.concat(this.valueParts);
              this.valueParts = [];
            }
            this.afterField();
          }
          break;
        }
        default: {
          const byte = chunk[i++]!;
          if (this.phase !== "length") this.remaining--;
          if (this.shift > 49) this.fail("varint longer than 8 bytes");
          this.varint += (byte & 0x7f) * 2 ** this.shift;
          this.shift += 7;
          if (byte & 0x80) break;
          const value = this.varint;
          this.varint = 0;
          this.shift = 0;
          this.varintDone(value);
        }
      }
    }
    this.offset += n;
  }

  /** The stream ended: anything half-read is an error. Returns the number of entries seen. */
  end(): number {
    if (this.phase !== "length" || this.shift !== 0) this.fail("state.bin ends in the middle of an entry");
    return this.entries;
  }

  private varintDone(value: number): void {
    switch (this.phase) {
      case "length":
        if (value > MAX_MESSAGE_BYTES) this.fail(`entry length ${value} is larger than any OpenBao writes`);
        this.remaining = value;
        this.key = undefined;
        this.keyBytes = 0;
        this.valueBytes = 0;
        this.value = undefined;
        if (value === 0) this.emit();
        else this.phase = "tag";
        return;
      case "tag": {
        this.field = Math.floor(value / 8);
        const wire = value % 8;
        if (wire === 0) this.phase = "varintValue";
        else if (wire === 2) this.phase = "fieldLength";
        else if (wire === 1 || wire === 5) this.startSkip(wire === 1 ? 8 : 4);
        else this.fail(`unexpected protobuf wire type ${wire} for field ${this.field}`);
        this.checkRemaining();
        return;
      }
      case "fieldLength":
        if (value > this.remaining) this.fail(`field ${this.field} is longer (${value}) than its entry`);
        if (this.field === 1) {
          if (value > MAX_KEY_BYTES) this.fail(`key of ${value} bytes`);
          this.keyBytes = value;
          if (value === 0) {
            this.key = "";
            this.afterField();
          } else {
            this.phase = "key";
            this.want = value;
          }
          return;
        }
        if (this.field === 2) {
          this.valueBytes = value;
          if (value > 0 && value <= MAX_KEPT_VALUE_BYTES && value <= this.remaining && this.key !== undefined && this.keepValue?.(this.key)) {
            this.phase = "value";
            this.want = value;
            return;
          }
        }
        this.startSkip(value);
        return;
      case "varintValue":
        this.afterField();
        return;
      default:
        return;
    }
  }

  private startSkip(bytes: number): void {
    if (bytes > this.remaining) this.fail(`field ${this.field} runs past its entry`);
    if (bytes === 0) return this.afterField();
    this.phase = "skip";
    this.want = bytes;
  }

  private checkRemaining(): void {
    if (this.remaining < 0) this.fail("a field runs past its entry");
  }

  private afterField(): void {
    this.checkRemaining();
    if (this.remaining === 0) this.emit();
    else this.phase = "tag";
  }

  private emit(): void {
    if (this.key === undefined) this.fail("an entry without a key");
    this.entries++;
    this.onEntry({ key: this.key, valueBytes: this.valueBytes, ...(this.value ? { value: this.value } : {}) });
    this.phase = "length";
  }

  private fail(why: string): never {
    throw new StateBinFormatError(`state.bin is not a stream of storage entries (entry ${this.entries + 1}, near byte ${this.offset}): ${why}`);
  }
}
