import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import * as ajvFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { policySchema, validatePolicy } from "../../../engine/index.js";
import { generatedDocs } from "../../../scripts/docs/policy-reference.js";
import { fencedBlocks, markdownFiles, repoRoot } from "./markdown.js";

// ajv-formats is CommonJS with `exports.default`: under NodeNext the plugin is `default.default`.
const addFormats = ajvFormats.default.default;

const schemaText = readFileSync(join(repoRoot, "schema", "policy.schema.json"), "utf8");
const ajv = new Ajv({ strict: true, allErrors: true });
addFormats(ajv);
const validateJson = ajv.compile(JSON.parse(schemaText) as object);

const zodAccepts = (doc: unknown): boolean => {
  try {
    validatePolicy(doc);
    return true;
  } catch {
    return false;
  }
};
const ajvAccepts = (doc: unknown): boolean => validateJson(doc) === true;
const ajvErrors = (): string => ajv.errorsText(validateJson.errors);

describe("generated policy docs", () => {
  it("docs/policy.md and schema/policy.schema.json are what `npm run docs` makes of engine/policy.ts", async () => {
    for (const { path, text } of await generatedDocs(repoRoot)) {
      const committed = readFileSync(join(repoRoot, path), "utf8");
      expect(committed === text, `${path} is out of date: run \`npm run docs\` and commit the result`).toBe(true);
    }
  });

  it("the reference names every field of the schema", () => {
    const md = readFileSync(join(repoRoot, "docs", "policy.md"), "utf8");
    const walk = (s: unknown, path: string[]): string[] => {
      const shape = (s as { shape?: Record<string, unknown> }).shape;
      const inner = (s as { _def?: { innerType?: unknown; schema?: unknown } })._def;
      if (shape) return Object.entries(shape).flatMap(([k, v]) => [[...path, k].join("."), ...walk(v, [...path, k])]);
      if (inner?.innerType) return walk(inner.innerType, path);
      return [];
    };
    const fields = walk(policySchema, []);
    expect(fields.length).toBeGreaterThan(40);
    for (const f of fields.filter((f) => f.includes("."))) expect(md, f).toContain("`" + f + "`");
  });
});

/** A minimal valid policy that fragments (e.g. only `bucket:` or `access:`) are merged onto. */
const base = { cluster: { name: "prod", nodes: ["https://vault-0.example:8200"] }, destination: { bucket: "acme-vault-snapshots" } };
const topLevel = Object.keys(policySchema.shape);

interface Example {
  where: string;
  policy: unknown;
}

/** Policies in the repository: stack config (`vault-raft-backup:policy`) and YAML blocks of the docs. */
function examplePolicies(): Example[] {
  const out: Example[] = [];
  const fromDoc = (where: string, doc: unknown) => {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) return;
    const config = (doc as { config?: Record<string, unknown> }).config;
    if (config && "vault-raft-backup:policy" in config) {
      out.push({ where, policy: config["vault-raft-backup:policy"] });
      return;
    }
    const keys = Object.keys(doc);
    if (keys.length && keys.every((k) => topLevel.includes(k))) out.push({ where, policy: { ...base, ...doc } });
  };
  const stackFiles = ["stacks", "stacks/dr"].flatMap((dir) =>
    readdirSync(join(repoRoot, dir))
      .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
      .map((f) => `${dir}/${f}`),
  );
  for (const file of stackFiles) fromDoc(file, parseYaml(readFileSync(join(repoRoot, file), "utf8")));
  for (const file of markdownFiles()) {
    for (const block of fencedBlocks(file)) {
      if (block.lang !== "yaml" && block.lang !== "yml") continue;
      fromDoc(`${file}:${block.line}`, parseYaml(block.text));
    }
  }
  return out;
}

describe("policy JSON Schema (schema/policy.schema.json)", () => {
  const examples = examplePolicies();

  it("finds the example policies of the stacks and the docs", () => {
    expect(examples.length).toBeGreaterThanOrEqual(6);
    expect(examples.some((e) => e.where.startsWith("docs/policy.md"))).toBe(true);
    expect(examples.some((e) => e.where.startsWith("stacks/Pulumi.prod.yaml"))).toBe(true);
  });

  it("accepts every example policy, and so does vrb's own validation", () => {
    for (const { where, policy } of examples) {
      expect(ajvAccepts(policy), `${where}: ${ajvErrors()}`).toBe(true);
      expect(() => validatePolicy(policy, where)).not.toThrow();
    }
  });

  const valid: [string, unknown][] = [
    ["the minimal policy", base],
    [
      "a full policy",
      {
        cluster: { name: "prod-2", nodes: ["https://vault-0.example:8200", "http://10.0.0.7:8200/"], tlsServerName: "vault.example" },
        destination: { bucket: "acme.vault-snapshots", prefix: "vault/prod/", region: "eu-west-1", endpoint: "https://s3.example.com", forcePathStyle: true, kmsKeyId: "alias/k" },
        retention: { keepLast: 1, maxAgeDays: 35 },
        objectLock: { mode: "GOVERNANCE", days: 36500 },
        schedule: { every: "1h30m" },
        verify: { canaries: ["secret/data/dr-canary"] },
        bucket: { create: false, abortIncompleteUploadDays: 7, transition: { days: 14, storageClass: "GLACIER_IR" }, accessLog: { bucket: "acme-logs" } },
        access: { namePrefix: "vrb-prod", tokenRole: { period: "24h", maxTtl: "30d", boundCidrs: ["10.20.0.0/16"] }, ci: { repository: "acme/platform" } },
      },
    ],
    ["an empty prefix", { ...base, destination: { bucket: "abc", prefix: "" } }],
    ["a duration in weeks", { ...base, schedule: { every: "1w" } }],
  ];
  const invalid: [string, unknown][] = [
    ["no cluster", { destination: base.destination }],
    ["no destination", { cluster: base.cluster }],
    ["an unknown top-level field", { ...base, retension: { keepLast: 3 } }],
    ["an unknown nested field", { ...base, cluster: { ...base.cluster, node: ["https://a:1"] } }],
    ["an upper-case cluster name", { ...base, cluster: { ...base.cluster, name: "Prod" } }],
    ["no nodes", { ...base, cluster: { name: "prod", nodes: [] } }],
    ["a node address with a path", { ...base, cluster: { name: "prod", nodes: ["https://vault-0:8200/v1"] } }],
    ["a node address without scheme", { ...base, cluster: { name: "prod", nodes: ["vault-0:8200"] } }],
    ["a bucket name with capitals", { ...base, destination: { bucket: "Acme" } }],
    ["a bucket name of two characters", { ...base, destination: { bucket: "ab" } }],
    ["a prefix with a leading slash", { ...base, destination: { bucket: "abc", prefix: "/vault/" } }],
    ["a prefix without the trailing slash", { ...base, destination: { bucket: "abc", prefix: "vault" } }],
    ["a region like a zone", { ...base, destination: { bucket: "abc", region: "eu-west-1a" } }],
    ["an endpoint without scheme", { ...base, destination: { bucket: "abc", endpoint: "s3.example.com" } }],
    ["keepLast 0", { ...base, retention: { keepLast: 0 } }],
    ["keepLast as text", { ...base, retention: { keepLast: "10" } }],
    ["maxAgeDays fractional", { ...base, retention: { maxAgeDays: 1.5 } }],
    ["a lock mode in lower case", { ...base, objectLock: { mode: "governance", days: 3 } }],
    ["a lock without days", { ...base, objectLock: { mode: "COMPLIANCE" } }],
    ["a lock of 100 years", { ...base, objectLock: { mode: "COMPLIANCE", days: 36501 } }],
    ["a schedule that is not a duration", { ...base, schedule: { every: "six hours" } }],
    ["a canary with a leading slash", { ...base, verify: { canaries: ["/secret/data/x"] } }],
    ["abortIncompleteUploadDays 8", { ...base, bucket: { abortIncompleteUploadDays: 8 } }],
    ["an unknown storage class", { ...base, bucket: { transition: { days: 1, storageClass: "COLD" } } }],
    ["a CIDR without a mask", { ...base, access: { tokenRole: { boundCidrs: ["10.0.0.1"] } } }],
    ["a CI repository without owner", { ...base, access: { ci: { repository: "platform" } } }],
    ["a CI branch wildcard", { ...base, access: { ci: { repository: "acme/platform", branch: "release/*" } } }],
  ];

  it.each(valid)("JSON Schema and zod both accept %s", (_name, doc) => {
    expect(ajvAccepts(doc), ajvErrors()).toBe(true);
    expect(zodAccepts(doc)).toBe(true);
  });

  it.each(invalid)("JSON Schema and zod both reject %s", (_name, doc) => {
    expect(ajvAccepts(doc)).toBe(false);
    expect(zodAccepts(doc)).toBe(false);
  });

  // What only code can check; docs/policy.md says so ("The editor cannot check everything").
  const zodOnly: [string, unknown][] = [
    ["a duration under one minute", { ...base, schedule: { every: "30s" } }],
    ["caCert with an http:// node", { ...base, cluster: { ...base.cluster, nodes: ["http://vault-0:8200"], caCert: "/etc/ca.pem" } }],
  ];
  it.each(zodOnly)("only vrb's validation rejects %s (documented)", (_name, doc) => {
    expect(ajvAccepts(doc)).toBe(true);
    expect(zodAccepts(doc)).toBe(false);
  });
});
