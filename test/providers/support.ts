import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type BackupPolicyInput } from "../../engine/index.js";
import { type LocalEnvironment } from "../../devenv/environment.js";
import { packageRoot } from "../../engine/package-info.js";

export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/** A policy for the shared local cluster, under a prefix of its own so no other test sees these snapshots. */
export function testPolicy(env: LocalEnvironment, tag: string): BackupPolicyInput {
  return {
    cluster: { name: env.clusterName, nodes: env.nodes.map((n) => n.apiAddr) },
    destination: {
      bucket: env.bucket!,
      prefix: `providers-${tag}-${randomBytes(3).toString("hex")}/`,
      region: env.s3!.region,
      endpoint: env.s3!.endpoint,
      forcePathStyle: true,
    },
    objectLock: { mode: "GOVERNANCE", days: 1 },
    schedule: { every: "6h" },
  };
}

/** S3 credentials for a provider host: what the SDK's default chain reads, as in a CI job. */
export function s3CredentialEnv(env: LocalEnvironment): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: env.s3!.accessKeyId, AWS_SECRET_ACCESS_KEY: env.s3!.secretAccessKey, AWS_REGION: env.s3!.region };
}

/** Runs a harness script from test/providers/harness under plain Node; input as JSON on stdin. */
export function runHarness<T>(script: string, input: unknown, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(packageRoot(), "test", "providers", "harness", script)], {
      cwd: packageRoot(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${script} exited ${code}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as T);
      } catch {
        reject(new Error(`${script} printed no JSON: ${stdout.slice(0, 500)}\n${stderr}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}

/**
 * Where `secret` occurs in `value` outside a Pulumi secret wrapper: JSON paths of plain-text
 * occurrences (substring matches in any string, so a token inside a URL or message counts too).
 */
export function plainOccurrences(value: unknown, secret: string, path = "$"): string[] {
  if (typeof value === "string") return value.includes(secret) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => plainOccurrences(v, secret, `${path}[${i}]`));
  if (value && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (o[SECRET_SIG_KEY] === SECRET_SIG) return [];
    return Object.entries(o).flatMap(([k, v]) => plainOccurrences(v, secret, `${path}.${k}`));
  }
  return [];
}

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider: string;
  providerSecret: boolean;
}
