import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    // Real clusters: start-up, restores and fault injection take seconds, not milliseconds.
    testTimeout: 180_000,
    hookTimeout: 240_000,
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]],
  },
});
