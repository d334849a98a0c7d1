import { parseByteSize } from "../../engine/vault/fill.js";

/** "256MiB", "1GiB", "512" (MiB): bytes, for the benches' --size (one parser: engine/vault/fill.ts). */
export function parseSize(text: string): number {
  return parseByteSize(text, "--size");
}
