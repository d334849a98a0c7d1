// Plain Node (not vitest: constructing a dynamic resource serializes its provider): runs the
// compiled DR program under Pulumi mocks and prints every registered resource with its inputs
// (secrets still wrapped) and the names of the resources it depends on.
// stdin: { config: { "ns:key": value }, secretKeys: ["ns:key"], preview: boolean }
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";

const input = JSON.parse(readFileSync(0, "utf8"));
const config = Object.fromEntries(Object.entries(input.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
pulumi.runtime.setAllConfig(config, input.secretKeys);

// MockResourceArgs carries no dependencies; take them from the RegisterResource request itself.
const depsByName = new Map();
const urnToName = new Map();
const { MockMonitor } = createRequire(import.meta.url)("@pulumi/pulumi/runtime/mocks.js");
const original = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (req, callback) {
  depsByName.set(req.getName(), req.getDependenciesList());
  return original.call(this, req, (err, res) => {
    if (res) urnToName.set(res.getUrn(), req.getName());
    callback(err, res);
  });
};

const registered = [];
pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call(args) {
      return args.inputs;
    },
  },
  "vault-raft-backup-dr",
  "dr",
  Boolean(input.preview),
);

let error;
try {
  await import(pathToFileURL(join(process.cwd(), "dist", "stacks", "dr", "index.js")).href);
} catch (err) {
  error = err instanceof Error ? err.message : String(err);
}
await new Promise((r) => setTimeout(r, 500));
const out = {
  error,
  resources: registered.map((r) => ({ ...r, dependsOn: (depsByName.get(r.name) ?? []).map((u) => urnToName.get(u) ?? u) })),
};
process.stdout.write(JSON.stringify(out), () => process.exit(0));
