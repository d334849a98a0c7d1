import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // vitest's default on a 2-core machine is ONE worker (cores - 1): every file in turn. Most of a
    // real-server test's time is waiting (node start-up, elections, the raft applying a snapshot),
    // not CPU, so files run side by side; VRB_TEST_WORKERS overrides (1 = one file at a time).
    maxWorkers: Number(process.env.VRB_TEST_WORKERS ?? 3),
    minWorkers: 1,
    // Real clusters: start-up, restores and fault injection take seconds, not milliseconds.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // The AWS SDK's Node 20 end-of-support notice, once per worker and CLI child: noise in test logs.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]],
  },
});
