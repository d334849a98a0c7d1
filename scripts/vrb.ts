#!/bin/sh
//usr/bin/env true; case " $NODE_OPTIONS" in *" --max-semi-space-size"*) exec node "$0" "$@" ;; esac; exec node --max-semi-space-size=2 "$0" "$@"
// The `vrb` executable, a shell script and an ES module at once. Run as a program (the npm bin,
// `npx vrb`, `./vrb.js`), /bin/sh reads line 2 (to JavaScript a comment) and replaces itself with
// ONE Node started with the bounded young generation the streaming commands need
// (scripts/cli/launch.ts), unless NODE_OPTIONS already chooses a size: no second process, no
// relaunch, signals reach the command directly. `/usr/bin/env node --flag` would need `env -S`,
// which BusyBox (Alpine images) lacks. Run as `node vrb.js`, the lines are comments and launch.ts
// starts a child Node for a streaming command instead.
// Kept to Node built-ins until the command is known: `vrb --version` reads package.json and stops.
import { dropOutputToClosedPipes, followLauncher, printVersionIfAsked, relaunchWithBoundedHeap } from "./cli/launch.js";

dropOutputToClosedPipes();
if (!printVersionIfAsked() && !(await relaunchWithBoundedHeap())) {
  // A worker does not outlive its launcher (kill -9 of `vrb` stops the backup it started).
  followLauncher();
  await import("./cli/main.js");
}
