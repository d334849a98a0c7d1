// `npm run build`'s second step: the `vrb` executable (dist/scripts/vrb.js, as tsc wrote it) is
// replaced by one bundle of the CLI and the engine, with a chunk per command and per store loaded on
// demand as before (dist/scripts/vrb-chunks/). Why: every `vrb` run pays Node's ES module loader
// for each of our modules it loads (resolve, read, compile, link: ~120 of them before a backup's
// first request); one file per chunk takes ~30 ms off every command's start-up
// (docs/architecture.md#start-up). Packages stay outside the bundle, loaded from node_modules as
// before, but for the age library and the pure-JavaScript code under it (BUNDLED below). The rest
// of dist (the engine's public API, the components, the providers) is untouched.
import { build } from "esbuild";
import { chmodSync, readFileSync, rmSync } from "node:fs";

const entry = "dist/scripts/vrb.js";
// The interpreter line's second half (scripts/vrb.ts): to /bin/sh a command, to JavaScript a
// comment, which a bundler drops with every other comment. Taken from the source, so the two
// cannot drift apart.
const shellLine = readFileSync("scripts/vrb.ts", "utf8").split("\n")[1];
if (!shellLine?.startsWith("//usr/bin/env true;")) throw new Error("scripts/vrb.ts: line 2 is not the /bin/sh line the bundle needs");
// The line starts Node with the heap settings launch.ts gives a relaunched worker (BOUNDED_HEAP_FLAGS in engine/bounded-heap.ts);
// the two are written in two places, so a build where they differ is refused. When NODE_OPTIONS
// chooses the young generation's size, the line passes the rest of them.
const { BOUNDED_HEAP_FLAGS } = await import("../dist/engine/bounded-heap.js");
const execFlags = [...shellLine.matchAll(/exec node ([^"]*)"\$0"/g)].map((m) => m[1].trim().split(/\s+/).filter(Boolean).join(" "));
const wanted = [BOUNDED_HEAP_FLAGS.filter((f) => !f.startsWith("--max-semi-space-size")).join(" "), BOUNDED_HEAP_FLAGS.join(" ")];
if (execFlags.join("\n") !== wanted.join("\n")) {
  throw new Error(`scripts/vrb.ts: line 2 starts node with [${execFlags.join("], [")}]; engine/bounded-heap.ts's BOUNDED_HEAP_FLAGS want [${wanted.join("], [")}]`);
}

// age-encryption and its @noble/@scure dependencies: 57 small ES modules that every encrypting or
// decrypting command loads whole, ~45 ms of CPU in Node's module loader each run (and a share of an
// encrypted backup's CPU worth measuring against the plain one's). Bundled into the chunk that
// imports them, they load in ~28 ms. No native code and no files of their own to find, so nothing
// in them depends on where they live.
const BUNDLED = /^(age-encryption|@noble\/[^/]+|@scure\/base)(\/|$)/;
/** Every package import stays external (as `packages: "external"` does), but for those above. */
const packagesExternalButBundled = {
  name: "packages-external-but-bundled",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.test(args.path) ? undefined : { external: true }));
  },
};

rmSync("dist/scripts/vrb-chunks", { recursive: true, force: true });
await build({
  entryPoints: [entry],
  outdir: "dist/scripts",
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  chunkNames: "vrb-chunks/[name]-[hash]",
  format: "esm",
  platform: "node",
  target: "node20",
  plugins: [packagesExternalButBundled],
  banner: { js: shellLine },
  sourcemap: "linked",
  logLevel: "warning",
});
// An executable in the checkout too: npm sets a bin's mode where it installs the package (and npx
// where it runs one), but tsc and esbuild write 644, so `./dist/scripts/vrb.js` and the tests,
// which start it as users do, found it not executable (EACCES) in a fresh clone.
chmodSync(entry, 0o755);
