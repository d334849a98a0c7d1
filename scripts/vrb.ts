#!/usr/bin/env node
// The `vrb` executable. Kept to Node built-ins: when a command moves a snapshot, this process only
// starts the real one with a bounded young generation (scripts/cli/launch.ts) and must not pay for
// loading the CLI itself first.
import { relaunchWithBoundedHeap } from "./cli/launch.js";

if (!(await relaunchWithBoundedHeap())) await import("./cli/main.js");
