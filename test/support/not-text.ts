import { writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes an 8 KiB binary (an ELF header, then fixed pseudo-random bytes) to `dir` and returns its
 * path: given as a policy, the YAML library's error quotes 6.5 KB of it (issue 26, point 10).
 */
export function binaryFile(dir: string, name = "policy.bin"): string {
  let x = 48;
  const body = Buffer.alloc(8192);
  for (let i = 0; i < body.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    body[i] = x >>> 24;
  }
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([Buffer.from("\x7fELF\x02\x01\x01\x00", "latin1"), body]));
  return path;
}
