import { describe, expect, it } from "vitest";
import type { Product } from "../../engine/index.js";
import { PRODUCTS, cliEnv, runVrb, sharedEnvOf, spawnVrb } from "../support/env.js";

// `vrb list | head`, `vrb backup 2>&1 | head -3`, a log shipper that restarts: the reader goes away
// and vrb's next write meets a closed pipe (EPIPE). It used to kill vrb wherever it was.

interface Closed {
  code: number | null;
  /** What vrb wrote before its reader went away. */
  seen: string;
}

/** Runs vrb with its stdout and stderr read until the first bytes, then closed, as `2>&1 | head -1` does. */
function vrbWithReaderGone(args: string[], env: Record<string, string> = {}): Promise<Closed> {
  const child = spawnVrb(args, env, { stdin: "ignore" });
  let seen = "";
  const closeBoth = (d: Buffer) => {
    seen += d.toString();
    child.stdout.destroy();
    child.stderr.destroy();
  };
  child.stdout.once("data", closeBoth);
  child.stderr.once("data", closeBoth);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`vrb ${args.join(" ")} did not finish in 170 s after its reader went away`));
    }, 170_000);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, seen });
    });
  });
}

describe("vrb with its reader gone (EPIPE)", () => {
  it("`vrb --help | head -1` and `vrb backup --help | head -1` exit 0 instead of crashing on the closed pipe", async () => {
    for (const args of [["--help"], ["backup", "--help"], ["list", "--help"]]) {
      const r = await vrbWithReaderGone(args);
      expect(r.seen).toMatch(/^Usage: vrb/);
      expect(r.code, args.join(" ")).toBe(0);
    }
  });
});

describe.each(PRODUCTS)("a backup whose log reader goes away (real %s + S3)", (product: Product) => {
  const env = sharedEnvOf(product);
  const run = `${product}-${Date.now().toString(36)}`;
  const flags = ["--cluster", `epipe-${run}`, "--prefix", `epipe-${run}/`];

  it("goes on to the end: exit 0, and the snapshot it stored lists as complete", async () => {
    const r = await vrbWithReaderGone(["backup", ...flags], cliEnv(env));
    expect(r.seen).toMatch(/^vrb: /);
    expect(r.code).toBe(0);
    const list = await runVrb(["list", ...flags, "--json"], cliEnv(env));
    expect(list.code, list.stderr).toBe(0);
    const snapshots = (JSON.parse(list.stdout) as { snapshots: { key: string; status: string }[] }).snapshots;
    expect(snapshots.map((s) => s.status)).toEqual(["good"]);
    expect(snapshots[0]!.key).toMatch(new RegExp(`^epipe-${run}/`));
  });
});
