import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig, type TestProjectInlineConfiguration } from "vitest/config";
import { DurationsReporter, LongestFirstSequencer } from "./test/support/durations.js";
import { perProductFiles, productNames } from "./test/support/projects.js";

// What every project runs with (projects do not inherit the root's test options).
const common = {
  pool: "forks",
  // Real clusters: start-up, restores and fault injection take seconds, not milliseconds.
  testTimeout: 180_000,
  hookTimeout: 240_000,
  // The AWS SDK's Node 20 end-of-support notice, once per worker and CLI child: noise in test logs.
  env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
} as const;

// A file whose every test runs per product is one task per product (test/support/projects.ts), so its
// OpenBao and Vault halves can run side by side; every other file runs once, on every product.
const perProduct = perProductFiles(dirname(fileURLToPath(import.meta.url)));
const projects: TestProjectInlineConfiguration[] = [
  ...productNames().map((product) => ({
    test: { ...common, name: product, include: perProduct, provide: { products: [product] } },
  })),
  { test: { ...common, name: "all", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...perProduct] } },
];

export default defineConfig({
  test: {
    // Runs once for the whole run, in the root project: starts one shared cluster per product.
    globalSetup: ["test/support/global-setup.ts"],
    projects,
    // vitest's default on a 2-core machine is ONE worker (cores - 1): every file in turn. Most of a
    // real-server test's time is waiting (node start-up, elections, the raft applying a snapshot),
    // not CPU: a busy worker with its servers used about 0.35 of a core (restore, restore-transit,
    // resilience, auth measured). With 5 side by side the 2 cores were still 23 % idle over a whole
    // run (vmstat), and 6 left 25 % idle. Whole runs on one 2-core machine: 5 workers 974-1014 s,
    // 6 870-1005 s, 7 842-849 s (the first just after a 1005 s run with 6), no test near its timeout. The run is
    // its files' total time / 7. VRB_TEST_WORKERS overrides (1 = one file at a time).
    maxWorkers: Number(process.env.VRB_TEST_WORKERS ?? 7),
    minWorkers: 1,
    // Longest file first from the committed test/support/durations.json: the run ends when its last
    // file does, so the last to start should be short ones.
    sequence: { sequencer: LongestFirstSequencer },
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }], new DurationsReporter()],
  },
});
