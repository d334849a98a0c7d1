// Plain Node (not vitest, whose transform breaks Pulumi's closure serialization): run the compiled
// stack program dist/stacks/backup/index.js under Pulumi mocks with the config given on stdin
// ({ stack, config: { "ns:key": string } }), and print every registered resource with its inputs
// (secrets stay wrapped as the SDK sends them) and the program's resolved stack outputs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as pulumi from "@pulumi/pulumi";

const input = JSON.parse(readFileSync(0, "utf8"));
const registered = [];
pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call(args) {
      return args.inputs;
    },
  },
  "vault-raft-backup",
  input.stack,
  false,
);
pulumi.runtime.setAllConfig(input.config, input.secretKeys ?? []);

let outputs = {};
let error;
try {
  const program = await import(pathToFileURL(join(process.cwd(), "dist", "stacks", "backup", "index.js")).href);
  const names = Object.keys(program);
  const values = await new Promise((resolve) => pulumi.all(names.map((n) => program[n])).apply(resolve));
  outputs = Object.fromEntries(names.map((n, i) => [n, values[i]]));
  // Let the mock monitor finish every registration.
  await new Promise((r) => setTimeout(r, 300));
} catch (err) {
  error = { name: err?.name, message: err?.message, field: err?.field };
}
process.stdout.write(JSON.stringify({ registered, outputs, error }), () => process.exit(0));
