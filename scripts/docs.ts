// `npm run docs`: writes docs/policy.md and schema/policy.schema.json from the zod schema of the
// policy (engine/policy.ts). test/unit/docs/policy-docs.test.ts fails when they are out of date.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { packageRoot } from "../engine/package-info.js";
import { generatedDocs } from "./docs/policy-reference.js";

for (const { path, text } of await generatedDocs(packageRoot())) {
  const file = join(packageRoot(), path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  process.stdout.write(`wrote ${path}\n`);
}
