import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { parse, stringify } from "yaml";
import { packageRoot } from "../../engine/package-info.js";
import { plainOccurrences } from "../providers/support.js";
import { tempDir } from "../support/env.js";
import { descendantsOf } from "../support/processes.js";

/** The backup stack's compiled program and the type of the snapshot resource it registers. */
export const BACKUP_MAIN = join(packageRoot(), "dist", "stacks", "backup", "index.js");
export const SNAPSHOT_TYPE = "pulumi-nodejs:dynamic/vault-raft-backup:VaultSnapshot";
/** Two schedule windows: a stack's `window` config, fixed so that a test decides when a new one starts. */
export const W1 = "2024-05-01T06:00:00Z";
export const W2 = "2024-05-01T12:00:00Z";

/** The keys under `prefix` that end in `suffix` (the stored snapshots by default). */
export async function listKeys(s3: S3Client, bucket: string, prefix: string, suffix = ".snap"): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith(suffix));
}

/** Where `node scripts/install-tools.mjs go pulumi` puts the CLI, our language host and Pulumi's dynamic-provider launcher. */
export const TOOLS_BIN = join(packageRoot(), ".tools", "bin");
const PEERS = ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"];

/** Fails (never skips) when the peers are not built, with the command that builds them. */
export function requirePulumiPeers(): void {
  const missing = PEERS.filter((p) => !existsSync(join(TOOLS_BIN, p)));
  if (missing.length) {
    throw new Error(
      `the real-engine Pulumi tests need ${missing.join(", ")} in ${TOOLS_BIN}: run 'node scripts/install-tools.mjs go pulumi' (Go >= 1.26; ~10 minutes the first time)`,
    );
  }
}

export interface PulumiResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for "what the user saw" assertions. */
  output: string;
}

/**
 * One Pulumi project in a temp directory, with its own file backend (`file://`), PULUMI_HOME and
 * passphrase secrets provider: a `Pulumi.yaml` whose `main` is a compiled program of this package
 * (the program resolves `@pulumi/pulumi` and `vault-raft-backup` from the repository), driven by
 * the real `pulumi` CLI from .tools/bin.
 */
export class PulumiProject {
  readonly dir: string;
  readonly backendDir: string;
  readonly home: string;
  readonly passphrase = randomBytes(18).toString("base64url");
  readonly stack = "test";
  /** Every CLI run's output, for the "secrets never printed" checks. */
  readonly transcript: string[] = [];

  constructor(
    readonly name: string,
    readonly main: string,
    private readonly env: Record<string, string> = {},
  ) {
    this.dir = tempDir(`pulumi-${name}`);
    this.backendDir = join(this.dir, "backend");
    this.home = join(this.dir, "pulumi-home");
    mkdirSync(this.backendDir);
    writeFileSync(join(this.dir, "Pulumi.yaml"), stringify({ name, runtime: { name: "nodejs", options: { typescript: false } }, main }));
  }

  get stackFile(): string {
    return join(this.dir, `Pulumi.${this.stack}.yaml`);
  }

  processEnv(): Record<string, string> {
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined || /^(VAULT_|BAO_|AWS_|PULUMI_)/.test(k)) continue;
      base[k] = v;
    }
    return {
      ...base,
      PATH: [TOOLS_BIN, dirname(process.execPath), process.env.PATH ?? ""].join(":"),
      HOME: this.dir,
      PULUMI_HOME: this.home,
      PULUMI_BACKEND_URL: `file://${this.backendDir}`,
      PULUMI_CONFIG_PASSPHRASE: this.passphrase,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SELF_MANAGED_STATE_NO_LEGACY_WARNING: "true",
      PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      NO_COLOR: "1",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...this.env,
    };
  }

  /** Runs `pulumi <args>` in the project directory; never throws on a non-zero exit. */
  run(args: string[], opts: { stdin?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<PulumiResult> {
    requirePulumiPeers();
    return new Promise((resolve, reject) => {
      const child = spawn(join(TOOLS_BIN, "pulumi"), [...args, "--non-interactive"], {
        cwd: this.dir,
        env: { ...this.processEnv(), ...opts.env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`pulumi ${args.join(" ")} did not finish in ${opts.timeoutMs ?? 150_000} ms\n${stdout}\n${stderr}`));
      }, opts.timeoutMs ?? 150_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        this.transcript.push(stdout, stderr);
        resolve({ code: code ?? -1, stdout, stderr, output: `${stdout}\n${stderr}` });
      });
      child.stdin.end(opts.stdin ?? "");
    });
  }

  /**
   * Runs `pulumi <args>` and SIGKILLs the CLI alone once its output matches `when`, as a CI
   * runner's timeout or the OOM killer would: its plugins are not told. Resolves with what it printed and
   * every process it had started by then (its plugins and theirs).
   */
  killedAt(args: string[], when: RegExp, timeoutMs = 180_000): Promise<{ output: string; started: number[] }> {
    requirePulumiPeers();
    return new Promise((resolve, reject) => {
      const child = spawn(join(TOOLS_BIN, "pulumi"), [...args, "--non-interactive"], { cwd: this.dir, env: this.processEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`pulumi ${args.join(" ")} never printed ${when} in ${timeoutMs} ms\n${output}`));
      }, timeoutMs);
      const seen = (d: Buffer) => {
        output += d.toString();
        if (!when.test(output) || child.killed) return;
        clearTimeout(timer);
        const started = descendantsOf(child.pid!);
        child.kill("SIGKILL");
        this.transcript.push(output);
        resolve({ output, started });
      };
      child.stdout.on("data", seen);
      child.stderr.on("data", seen);
      child.on("error", reject);
    });
  }

  /** Runs `pulumi <args>` and throws with its output unless it exits 0. */
  async ok(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<PulumiResult> {
    const r = await this.run(args, opts);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    return r;
  }

  /**
   * `pulumi stack init` with the passphrase secrets provider, then the plain config written into
   * the stack file (structured values stay structured) and each secret set through
   * `pulumi config set --secret` with the value on stdin (never on a command line).
   */
  async init(config: Record<string, unknown>, secrets: Record<string, string> = {}): Promise<void> {
    await this.ok(["login", `file://${this.backendDir}`]);
    await this.ok(["stack", "init", this.stack, "--secrets-provider", "passphrase"]);
    await this.setConfig(config);
    for (const [key, value] of Object.entries(secrets)) await this.ok(["config", "set", "--secret", key], { stdin: value });
  }

  /** Merges plain config values into the stack file. */
  async setConfig(config: Record<string, unknown>): Promise<void> {
    const doc = (parse(readFileSync(this.stackFile, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    doc.config = { ...(doc.config ?? {}), ...config };
    // Quoted: Pulumi reads the file with a YAML 1.1 parser, which would turn an unquoted
    // 2024-05-01T06:00:00Z into a timestamp (and hand the program Go's rendering of it).
    writeFileSync(this.stackFile, stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
  }

  async outputs(): Promise<Record<string, unknown>> {
    return JSON.parse((await this.ok(["stack", "output", "--json"])).stdout) as Record<string, unknown>;
  }

  async exportStack(): Promise<{ deployment: { resources?: { type: string; urn: string; id?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] } }> {
    return JSON.parse((await this.ok(["stack", "export"])).stdout) as never;
  }

  /** Every file Pulumi wrote: the backend (state, history, backups), the stack file, PULUMI_HOME. */
  rawFiles(): { path: string; text: string }[] {
    const out: { path: string; text: string }[] = [];
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile()) out.push({ path: p, text: readFileSync(p).toString("latin1") });
      }
    };
    walk(this.dir);
    return out;
  }
}

/**
 * Where any of `secrets` is in plain text, as a list of places (empty when none): `exported` (the
 * project's `pulumi stack export`) outside Pulumi's secret wrappers, any file Pulumi wrote, any CLI
 * output of the project. A secret is named by its first 4 characters only.
 */
export function plainTextLeaks(project: PulumiProject, exported: unknown, secrets: string[]): string[] {
  const files = project.rawFiles();
  return secrets.flatMap((secret) => {
    const name = `${secret.slice(0, 4)}...`;
    return [
      ...plainOccurrences(exported, secret).map((p) => `${name} in the exported state at ${p}`),
      ...files.filter((f) => f.text.includes(secret)).map((f) => `${name} in ${f.path}`),
      ...project.transcript.flatMap((t, i) => (t.includes(secret) ? [`${name} in CLI output ${i}`] : [])),
    ];
  });
}

/** The resource of a type in an exported deployment. */
export function resourceOf(exported: Awaited<ReturnType<PulumiProject["exportStack"]>>, type: string) {
  return (exported.deployment.resources ?? []).filter((r) => r.type === type);
}
