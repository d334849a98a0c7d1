import { createHash } from "node:crypto";
import type { Stage } from "../pipeline.js";

/** The size of the stream as it passes, with progress. Never fails, never holds back. */
export class CountingStage implements Stage {
  readonly name: string = "count";
  /** Bytes seen so far. */
  bytes = 0;

  /** `onBytes` is told the running byte count after every chunk (progress). */
  constructor(private readonly onBytes?: (bytes: number) => void) {}

  write(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
  }

  finish(): void {}

  abort(): void {}
}

/** SHA-256 and size of the whole snapshot, as it passes. Never fails, never holds back. */
export class HashingStage extends CountingStage {
  override readonly name = "hash";
  private readonly hash = createHash("sha256");
  private hex?: string;

  override write(chunk: Buffer): void {
    this.hash.update(chunk);
    super.write(chunk);
  }

  override finish(): void {
    this.hex = this.hash.digest("hex");
  }

  /** Hex SHA-256 of every byte written; available once the stage finished. */
  get sha256(): string {
    if (this.hex === undefined) throw new Error("the hashing stage has not finished");
    return this.hex;
  }
}
