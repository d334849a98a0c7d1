#!/bin/sh
//usr/bin/env true; case " $NODE_OPTIONS" in *" --max-semi-space-size"*) exec node --initial-old-space-size=64 "$0" "$@" ;; esac; exec node --max-semi-space-size=1 --initial-old-space-size=64 "$0" "$@"
// The `vrb` executable, a shell script and an ES module at once. Run as a program (the npm bin,
// `npx vrb`, `./vrb.js`), /bin/sh reads line 2 (to JavaScript a comment) and replaces itself with
// ONE Node started with the heap settings the streaming commands need (BOUNDED_HEAP_FLAGS in
// engine/bounded-heap.ts; NODE_OPTIONS choosing the young generation's size keeps it, and NODE_OPTIONS
// may not carry --initial-old-space-size, so that one is always passed): no second process, no
// relaunch, signals reach the command directly. `/usr/bin/env node --flag` would need `env -S`,
// which BusyBox (Alpine images) lacks. Run as `node vrb.js`, the lines are comments and launch.ts
// starts a child Node for a streaming command instead.
// Kept to Node built-ins until the command is known: `vrb --version` reads package.json and stops.
import { dropOutputToClosedPipes, followLauncher, printVersionIfAsked, relaunchWithBoundedHeap, stopOnSignalsAsInit } from "./cli/launch.js";

dropOutputToClosedPipes();
stopOnSignalsAsInit();
if (!printVersionIfAsked() && !(await relaunchWithBoundedHeap())) {
  // A worker does not outlive its launcher (kill -9 of `vrb` stops the backup it started).
  followLauncher();
  await import("./cli/main.js");
}
