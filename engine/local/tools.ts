import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { OperationError } from "../errors.js";

/** The package's own root (where package.json named vault-raft-backup lives), from source or dist. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "vault-raft-backup") return dir;
      } catch {
        // keep looking upwards
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new OperationError("cannot find the vault-raft-backup package root");
    dir = up;
  }
}

let packageInfoCache: { name: string; version: string } | undefined;

/** This package's name and version, for manifests and `vrb --version` (read once). */
export function packageInfo(): { name: string; version: string } {
  if (!packageInfoCache) {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { name: string; version: string };
    packageInfoCache = { name: pkg.name, version: pkg.version };
  }
  return packageInfoCache;
}

export type ToolName = "bao" | "weed" | "moto_server";

/** Path of a server binary from the project-local venv (`npm run tools`), or VRB_TOOLS_BIN. */
export function toolPath(tool: ToolName): string {
  const binDir = process.env.VRB_TOOLS_BIN ?? join(packageRoot(), ".tools", "venv", "bin");
  const p = join(binDir, tool);
  if (!existsSync(p)) {
    throw new OperationError(
      `${tool} not found at ${p}. Install the pinned servers with 'npm run tools' in this repository, or ` +
        `'node ${join(packageRoot(), "scripts", "install-tools.mjs")}' (needs python3 with venv).`,
    );
  }
  return p;
}

export function baoVersion(): string {
  const r = spawnSync(toolPath("bao"), ["version"], { encoding: "utf8" });
  return (r.stdout || r.stderr || "").trim();
}
