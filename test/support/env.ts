import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import type { S3Client } from "@aws-sdk/client-s3";
import { VaultClient, type BackupPolicy, type Product } from "../../engine/index.js";
import { localS3Client } from "../../devenv/s3server.js";
import { environmentVariables, type LocalEnvironment } from "../../devenv/environment.js";
import { s3DestinationOf } from "../../engine/storage/destination.js";
import { S3Store } from "../../engine/storage/s3/store.js";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { packageRoot } from "../../engine/package-info.js";

/**
 * The products every cluster-level test runs on: `describe.each(PRODUCTS)("%s", (product) => { const env = sharedEnvOf(product); ... })`.
 * OpenBao and HashiCorp Vault (test/support/global-setup.ts, VRB_TEST_PRODUCTS). Where the two
 * differ in what a test asserts, ask `productProfile(product)` (engine/vault/product.ts). A file whose
 * every test is under `describe.each(PRODUCTS)` runs once per product, in that product's project,
 * where PRODUCTS is the one product (test/support/projects.ts).
 */
export const PRODUCTS: readonly Product[] = inject("products");

/** The shared OpenBao environment (3 nodes + S3): what tests not (yet) run per product use. */
export function sharedEnv(): LocalEnvironment {
  return inject("localEnv");
}

/** The shared 3-node environment of `product`, each with its own S3 server and bucket (test/support/global-setup.ts). */
export function sharedEnvOf(product: Product): LocalEnvironment {
  const env = inject("localEnvs")[product];
  if (!env) throw new Error(`no shared ${product} environment in this run (products: ${PRODUCTS.join(", ")})`);
  return env;
}

/** A root-token client on the shared cluster's first node. */
export function rootClient(env: LocalEnvironment = sharedEnv(), addr = env.nodes[0]!.apiAddr): VaultClient {
  return new VaultClient({ addr, token: env.keys!.rootToken, caCert: env.tls?.caCertPath });
}

export function s3For(env: LocalEnvironment = sharedEnv()) {
  return localS3Client(env.s3!);
}

/** The S3 store of `bucket` + `prefix` over a test's own client (which stays the test's to destroy). */
export function s3StoreOn(s3: S3Client, bucket: string, prefix = ""): S3Store {
  return new S3Store({ client: s3, bucket, prefix, ownsClient: false });
}

/** The store of a policy's destination over a test's own client: where runBackup writes and runs are recorded. */
export function policyStoreOn(s3: S3Client, policy: BackupPolicy): S3Store {
  const d = s3DestinationOf(policy.destination, "a test store over an S3 client");
  return new S3Store({ client: s3, bucket: d.bucket, prefix: d.prefix, kmsKeyId: d.kmsKeyId, ownsClient: false });
}

/** runBackup's options with the store of their policy's destination over a test's own client. */
export function backupOn<T extends { policy: BackupPolicy }>(s3: S3Client, opts: T): T & { store: S3Store } {
  return { ...opts, store: policyStoreOn(s3, opts.policy) };
}

/** Writes `env`'s unseal keys as init JSON, the keys file `--unseal-keys-file` takes (mode 0600); returns `path`. */
export function writeKeysFile(env: LocalEnvironment, path: string): string {
  writeFileSync(path, JSON.stringify({ unseal_keys_b64: env.keys!.unsealKeysB64, unseal_threshold: env.keys!.threshold }), { mode: 0o600 });
  return path;
}

/** Writes a canary secret at `secret/<path>` (KV v2; the mount is made if missing) with the root token. */
export async function putCanary(env: LocalEnvironment, canary: { path: string; value: string }): Promise<void> {
  const root = rootClient(env);
  try {
    await ensureKvV2(root, "secret");
    await kvPut(root, "secret", canary.path, { value: canary.value });
  } finally {
    await root.close();
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `vrb-${prefix}-`));
}

/** Environment variables that point the CLI at a local environment, as `vrb local env` does. */
export function cliEnv(env: LocalEnvironment, extra: Record<string, string> = {}): Record<string, string> {
  return { ...environmentVariables(env), ...extra };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * An empty home directory for CLI runs: the CLI reads ~/.vault-token (as the vault CLI does), and a
 * token left in the real home by someone's `bao login` must not change what a test sees.
 */
let emptyHome: string | undefined;
export function testHome(): string {
  return (emptyHome ??= tempDir("home"));
}

/**
 * Starts the built vrb as a user's shell would: the executable itself (the npm bin), whose
 * interpreter line starts the one Node with the heap settings, not `node vrb.js` (which relaunches
 * a second Node for a streaming command: `launcher`, for the tests of that path);
 * the test's own HOME (unless `env.HOME` says otherwise), and none of the machine's Vault, S3 or
 * vrb settings (the test passes the ones it means in `env`).
 */
/** The built `vrb` executable (dist/, built by `npm test`): the npm bin a user runs. */
export function vrbBin(): string {
  return join(packageRoot(), "dist", "scripts", "vrb.js");
}

/** The environment a `vrb` child gets: the test's own HOME (unless `env.HOME` says otherwise) and none of the machine's Vault, S3 or vrb settings, then `env`. */
export function vrbEnvironment(env: Record<string, string> = {}): Record<string, string | undefined> {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of ["VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN", "AWS_ENDPOINT_URL_S3", "VAULT_CACERT", "BAO_CACERT", "VRB_NODES", "VRB_BUCKET", "VRB_CLUSTER"])
    delete base[k];
  return { ...base, HOME: testHome(), ...env };
}

export function spawnVrb(
  args: string[],
  env: Record<string, string> = {},
  opts: {
    cwd?: string;
    stdin?: "pipe" | "ignore";
    /** `node vrb.js`: a streaming command runs in a worker Node under a launcher (scripts/cli/launch.ts). */
    launcher?: boolean;
  } = {},
): ChildProcessByStdio<Writable | null, Readable, Readable> {
  const bin = vrbBin();
  const options = { env: vrbEnvironment(env), cwd: opts.cwd ?? packageRoot() };
  const [file, argv] = opts.launcher ? [process.execPath, [bin, ...args]] : [bin, args];
  return opts.stdin === "ignore" ? spawn(file, argv, { ...options, stdio: ["ignore", "pipe", "pipe"] }) : spawn(file, argv, options);
}

/** Runs the compiled `vrb` CLI (dist/, built by `npm test`) as a user would, with an empty home unless `env.HOME` says otherwise. */
export function runVrb(
  args: string[],
  env: Record<string, string> = {},
  opts: { timeoutMs?: number; cwd?: string; /** sends `signal` to vrb once its stderr matches `when` */ interrupt?: { when: RegExp; signal: NodeJS.Signals } } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnVrb(args, env, { cwd: opts.cwd });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    let interrupted = false;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (opts.interrupt && !interrupted && opts.interrupt.when.test(stderr)) {
        interrupted = true;
        child.kill(opts.interrupt.signal);
      }
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`vrb ${args.join(" ")} did not finish in ${opts.timeoutMs ?? 170_000} ms\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 170_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
