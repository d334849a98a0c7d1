// Who we are: the package's root directory and its name and version (manifests, status records,
// `vrb --version`), found from wherever this module runs (source tree, dist, node_modules).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { OperationError } from "./errors.js";

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
