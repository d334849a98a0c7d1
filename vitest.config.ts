import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Real clusters: start-up, restores and fault injection take seconds, not milliseconds.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    // The AWS SDK's Node 20 end-of-support notice, once per worker and CLI child: noise in test logs.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]],
  },
});
