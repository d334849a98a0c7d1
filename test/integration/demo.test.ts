import { afterAll, describe, expect, it } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { type DemoReport } from "../../devenv/demo.js";
import { loadEnvironment, localDown } from "../../devenv/environment.js";
import { runVrb, tempDir } from "../support/env.js";

// `vrb demo` on a fresh local environment of OpenBao's default shape (generate-root disabled): the
// whole disaster story a newcomer runs first, as the README tells it.
const dir = join(tempDir("demo"), "env");

afterAll(async () => {
  await localDown(dir);
});

describe("vrb demo (real OpenBao + S3, default listener settings)", () => {
  it("seeds, backs up, destroys every node, rebuilds 3 new nodes and reads every secret version back", async () => {
    const r = await runVrb(["demo", "--dir", dir, "--secrets", "40", "--json"], {}, { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as DemoReport;
    expect(report.ok).toBe(true);
    expect(report.checked).toEqual({ secrets: 40, versions: 80, mismatches: [] });
    expect(report.destroyed).toHaveLength(3);
    expect(report.rebuilt.map((n) => n.id).some((id) => report.destroyed.includes(id))).toBe(false);
    // The nodes are hardened (no unauthenticated generate-root); the init JSON's root token verifies.
    expect(report.restore.token).toBe("keys-file");
    expect(report.restore.verification).toBe("full");
    expect(report.restore.autopilot).toEqual({ healthy: true, failureTolerance: 1 });
    const state = loadEnvironment(dir)!;
    expect(state.shape.unauthedGenerateRoot).toBe(false);
    for (const n of state.nodes) expect(readFileSync(n.configPath, "utf8")).not.toMatch(/disable_unauthed_generate_root_endpoints/);
    expect(state.nodes.map((n) => n.id).sort()).toEqual(report.rebuilt.map((n) => n.id).sort());
    expect(r.stdout + r.stderr).not.toContain(state.keys!.rootToken);
    expect(existsSync(dir)).toBe(true);
  });
});
