import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../engine/package-info.js";

/*
 * The peer installer keeps what it builds in a per-user cache keyed by the pins, so a second
 * checkout (a CI clone, a worktree, `rm -rf .tools`) reuses the build instead of linking it again.
 * Run on the age peer, the smallest: real `go build`s from the module cache `npm test` filled,
 * in scratch checkouts that hold only the installer and the peer's wrapper module.
 */

const root = packageRoot();
const scratch = mkdtempSync(join(tmpdir(), "vrb-tools-cache-"));
const cache = join(scratch, "cache");

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A checkout with the installer and tools/go/age only, as a clone has them. */
function checkout(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, "scripts"), { recursive: true });
  cpSync(join(root, "scripts", "install-tools.mjs"), join(dir, "scripts", "install-tools.mjs"));
  cpSync(join(root, "tools", "go", "age"), join(dir, "tools", "go", "age"), { recursive: true });
  return dir;
}

function install(dir: string, cacheSetting: string): string {
  const r = spawnSync(process.execPath, [join(dir, "scripts", "install-tools.mjs"), "go", "age"], {
    encoding: "utf8",
    env: { ...process.env, VRB_TOOLS_CACHE: cacheSetting },
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const ageVersion = (dir: string) => spawnSync(join(dir, ".tools", "bin", "age"), ["--version"], { encoding: "utf8" }).stdout.trim();
const entries = () => readdirSync(join(cache, "go")).filter((e) => !e.includes(".filling-"));

describe("the tool installer's cache shared between checkouts (real go build of the age peer)", () => {
  it("the first checkout builds and keeps the build; the second takes it from the cache without building; VRB_TOOLS_CACHE=none builds and leaves the cache alone", () => {
    const first = checkout("first");
    expect(install(first, cache)).toMatch(/built in \d+ s/);
    expect(ageVersion(first)).toMatch(/^v1\.3\.2/);
    expect(entries()).toHaveLength(1);
    const entry = join(cache, "go", entries()[0]!);
    expect(readdirSync(entry).sort()).toEqual([".stamp", "age", "age-keygen"]);

    const second = checkout("second");
    const reused = install(second, cache);
    expect(reused).toContain(`at these pins found in ${entry}`);
    expect(reused).not.toMatch(/building|built in/);
    expect(ageVersion(second)).toBe(ageVersion(first));
    expect(sha256(join(second, ".tools", "bin", "age-keygen"))).toBe(sha256(join(entry, "age-keygen")));
    // A repeat run in either checkout is a no-op, as before the cache.
    expect(install(second, cache)).toBe("");

    const own = checkout("own");
    expect(install(own, "none")).toMatch(/built in \d+ s/);
    expect(entries()).toHaveLength(1);
  });

  it("a cache that cannot be written (a read-only home) does not fail the install: it goes to .tools only and says so", () => {
    const dir = checkout("unwritable");
    // A path under a regular file can never be made, whoever runs the test (root ignores modes).
    const file = join(scratch, "a-file");
    writeFileSync(file, "");
    const out = install(dir, join(file, "cache"));
    expect(out).toContain(`the cache ${join(file, "cache")} cannot be written (ENOTDIR); installing into ${join(dir, ".tools")} only`);
    expect(out).toMatch(/built in \d+ s/);
    expect(ageVersion(dir)).toMatch(/^v1\.3\.2/);
  });

  it("a checkout whose pins change builds again into a new entry and never writes through the old one (the binaries are hard links)", () => {
    const dir = checkout("changed");
    install(dir, cache);
    const [old] = entries();
    const oldAge = join(cache, "go", old!, "age");
    const before = { sha: sha256(oldAge), inode: statSync(oldAge).ino };
    expect(statSync(join(dir, ".tools", "bin", "age")).ino).toBe(before.inode);
    // Another pin: the peer's description is part of the hash, like go.mod and go.sum.
    const spec = join(dir, "tools", "go", "age", "peer.json");
    writeFileSync(spec, JSON.stringify({ ...JSON.parse(readFileSync(spec, "utf8")), title: "age at other pins" }));
    expect(install(dir, cache)).toMatch(/built in \d+ s/);
    expect(entries()).toHaveLength(2);
    expect(sha256(oldAge)).toBe(before.sha);
    expect(statSync(join(dir, ".tools", "bin", "age")).ino).not.toBe(before.inode);
    expect(existsSync(join(cache, "go", old!, ".stamp"))).toBe(true);
  });
});
