import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { OperationError } from "../engine/errors.js";
import { validatePolicy, type BackupPolicyInput } from "../engine/policy.js";
import { describeProduct } from "../engine/vault/product.js";
import { localCommand, type LocalEnvironment } from "./environment.js";
import { packageRoot } from "../engine/package-info.js";

/** Where `vrb local up` writes the policy unless told: `<dir>/policy.yaml` (removed by `vrb local down`). */
export function defaultLocalPolicyPath(state: LocalEnvironment): string {
  return join(state.dir, "policy.yaml");
}

/**
 * The backup policy of a local environment: its nodes (and CA with TLS), its bucket and S3
 * endpoint, a retention and a schedule, and `canaries` when given. No secret: the token and the S3
 * credentials stay in `vrb local env`.
 */
export function localPolicy(state: LocalEnvironment, opts: { canaries?: string[] } = {}): BackupPolicyInput {
  if (!state.s3 || !state.bucket) throw new OperationError(`the local environment in ${state.dir} has no S3 server: a policy needs a destination`);
  return {
    cluster: {
      name: state.clusterName,
      nodes: state.nodes.map((n) => n.apiAddr),
      ...(state.tls ? { caCert: state.tls.caCertPath } : {}),
    },
    destination: { bucket: state.bucket, prefix: "", endpoint: state.s3.endpoint, region: state.s3.region, forcePathStyle: true },
    retention: { keepLast: 10, maxAgeDays: 7 },
    schedule: { every: "1h" },
    ...(opts.canaries?.length ? { verify: { canaries: opts.canaries } } : {}),
  };
}

/** The policy file's text: a header that says how to use it, then the policy (validated against the schema). */
export function localPolicyText(state: LocalEnvironment, path: string, opts: { canaries?: string[] } = {}): string {
  const body = stringify(localPolicy(state, opts), { lineWidth: 0 });
  validatePolicy(parseYaml(body), path);
  const header = [
    `# yaml-language-server: $schema=${join(packageRoot(), "schema", "policy.schema.json")}`,
    `# Backup policy of the local environment in ${state.dir} (${describeProduct(state.product ?? "openbao")} nodes), written by 'vrb local up'.`,
    `# No secret here: the token and the S3 credentials come from 'vrb local env'. Use it from a shell:`,
    `#   eval "$(${localCommand("env", state.dir)})"`,
    `#   vrb backup --policy ${path}`,
    `#   vrb list --policy ${path}`,
    `# Fields: docs/policy.md. '${localCommand("down", state.dir)}' stops the environment${path.startsWith(state.dir + "/") ? " and removes this file" : ""}.`,
  ];
  return header.join("\n") + "\n" + body;
}

/** Writes the environment's policy file (default `<dir>/policy.yaml`) and returns its absolute path. */
export function writeLocalPolicyFile(state: LocalEnvironment, opts: { path?: string; canaries?: string[] } = {}): string {
  const path = resolve(opts.path ?? defaultLocalPolicyPath(state));
  const text = localPolicyText(state, path, opts);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o644 });
  return path;
}
