import { createHash } from "node:crypto";
import type { Stage } from "../pipeline.js";

/** SHA-256 and size of the whole snapshot, as it passes. Never fails, never holds back. */
export class HashingStage implements Stage {
  readonly name = "hash";
  /** Bytes seen so far. */
  bytes = 0;
  private readonly hash = createHash("sha256");
  private hex?: string;

  /** `onBytes` is told the running byte count after every chunk (progress). */
  constructor(private readonly onBytes?: (bytes: number) => void) {}

  write(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
  }

  finish(): void {
    this.hex = this.hash.digest("hex");
  }

  abort(): void {}

  /** Hex SHA-256 of every byte written; available once the stage finished. */
  get sha256(): string {
    if (this.hex === undefined) throw new Error("the hashing stage has not finished");
    return this.hex;
  }
}
