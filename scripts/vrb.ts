#!/usr/bin/env node
// The `vrb` executable. Kept to Node built-ins: when a command moves a snapshot, this process only
// starts the real one with a bounded young generation (scripts/cli/launch.ts) and must not pay for
// loading the CLI itself first.
import { followLauncher, relaunchWithBoundedHeap } from "./cli/launch.js";

if (!(await relaunchWithBoundedHeap())) {
  // A worker does not outlive its launcher (kill -9 of `vrb` stops the backup it started).
  followLauncher();
  await import("./cli/main.js");
}
