// `npm test`'s steps before vitest, side by side instead of one after the other: the tests' type
// check, lint and the format check are each single-threaded, and the real peers' install waits on
// the network and on `go build`. The install streams its progress (the first build of the Go peers
// takes minutes); each check's output is printed whole when it ends. Exits non-zero, after every
// step has ended, if any step failed.
import { spawn } from "node:child_process";

const steps = [
  { name: "type check (tsconfig.test.json)", cmd: "npx", args: ["tsc", "-p", "tsconfig.test.json"] },
  { name: "lint", cmd: "npm", args: ["run", "lint", "--silent"] },
  { name: "format check", cmd: "npm", args: ["run", "format:check", "--silent"] },
  { name: "real peers (scripts/install-tools.mjs python go)", cmd: process.execPath, args: ["scripts/install-tools.mjs", "python", "go"], stream: true },
];

function run(step) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(step.cmd, step.args, { stdio: step.stream ? "inherit" : ["ignore", "pipe", "pipe"] });
    let output = "";
    if (!step.stream) {
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
    }
    let ended = false;
    const done = (code, why) => {
      if (ended) return;
      ended = true;
      if (output.trim()) process.stdout.write(`${output.trimEnd()}\n`);
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`checks: ${step.name}: ${code === 0 ? "ok" : `FAILED (${why})`} in ${secs} s`);
      resolve(code === 0);
    };
    child.on("error", (err) => done(1, err.message));
    child.on("close", (code, signal) => done(code, signal ? `signal ${signal}` : `exit ${code}`));
  });
}

const results = await Promise.all(steps.map(run));
if (results.some((ok) => !ok)) process.exit(1);
