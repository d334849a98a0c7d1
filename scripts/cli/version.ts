import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../engine/index.js";

export function toolVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}
