// The DR stack's files step, for real: a backup with `files` (age-encrypted) in the shared S3, then
// the exact `create` scripts the DR program produced (taken from a mock run's resource inputs) run
// with /bin/sh as the command provider runs them: the fetch on "this machine", then the install with
// the fetch's stdout on stdin. That install script is what command.remote.Command runs over SSH;
// there is no sshd here, so it runs locally with its target folder pointed at a temp dir.
import { spawn, spawnSync } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import { extract } from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadIdentities, type BackupReport } from "../../engine/index.js";
import { manifestKeyFor, type SnapshotManifest } from "../../engine/snapshot/manifest.js";
import { decryptingStream } from "../../engine/crypto/decrypt-stream.js";
import { packageRoot } from "../../engine/package-info.js";
import { snapshotUsed } from "../../stacks/dr/files.js";
import { cliEnv, runVrb, s3For, sharedEnv, tempDir, vrbBin } from "../support/env.js";
import { plainOccurrences, runHarness, SECRET_SIG, SECRET_SIG_KEY } from "./support.js";

interface Res {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  dependsOn: string[];
}

const env = sharedEnv();
const s3 = s3For(env);
const bucket = env.bucket!;
const dir = tempDir("drfiles");
const tag = randomBytes(3).toString("hex");
const cluster = `drfiles-${tag}`;
const prefix = `drfiles-${tag}/`;
const policy = {
  cluster: { name: cluster, nodes: env.nodes.map((n) => n.apiAddr) },
  destination: { bucket, prefix, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
};
// Pulumi runs commands in the project directory (stacks/dr); the mock run has no root directory.
const projectDir = join(packageRoot(), "stacks", "dr");
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const unwrap = (v: unknown): unknown => (v && typeof v === "object" && (v as Record<string, unknown>)[SECRET_SIG_KEY] === SECRET_SIG ? (v as { value: unknown }).value : v);

let ageId: string;
let idFile: string;
let configDir: string;
let report: BackupReport;
let manifest: SnapshotManifest;

/** Runs a script as the command provider does (`/bin/sh -c`), with stdin, in `cwd`. */
function sh(script: string, opts: { stdin?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const base: Record<string, string | undefined> = { ...process.env, HOME: dir };
    for (const k of ["VAULT_TOKEN", "BAO_TOKEN", "AWS_ENDPOINT_URL_S3"]) delete base[k];
    const child = spawn("/bin/sh", ["-c", script], { cwd: opts.cwd ?? dir, env: { ...base, ...opts.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.stdin ?? "");
  });
}

/** S3 credentials only (what the operator's shell has); the endpoint and region come from the command's `environment`. */
const credentials = () => ({ AWS_ACCESS_KEY_ID: env.s3!.accessKeyId, AWS_SECRET_ACCESS_KEY: env.s3!.secretAccessKey });

async function tarEntries(tar: Buffer): Promise<Map<string, { mode: number; data: Buffer }>> {
  const out = new Map<string, { mode: number; data: Buffer }>();
  const x = extract();
  x.on("entry", (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c) => chunks.push(c as Buffer));
    stream.on("end", () => {
      out.set(h.name, { mode: h.mode ?? 0, data: Buffer.concat(chunks) });
      next();
    });
  });
  const done = new Promise<void>((r, j) => (x.on("finish", () => r()), x.on("error", j)));
  Readable.from([tar]).pipe(x);
  await done;
  return out;
}

const drRun = (files: unknown) =>
  runHarness<{ error?: string; resources: Res[] }>("dr-program.mjs", {
    config: {
      "vault-raft-backup:policy": policy,
      "vault-raft-backup-dr:identity": ageId,
      "vault-raft-backup-dr:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nthrowaway\n-----END OPENSSH PRIVATE KEY-----",
      "vault-raft-backup-dr:files": files,
    },
    secretKeys: ["vault-raft-backup-dr:identity", "vault-raft-backup-dr:sshPrivateKey"],
    preview: true,
  });

beforeAll(async () => {
  ageId = await generateX25519Identity();
  idFile = join(dir, "ops.agekey");
  writeFileSync(idFile, `${ageId}\n`, { mode: 0o600 });
  // A node's configuration folder: server config, CA certificate, TLS private key.
  configDir = join(dir, "etc-openbao");
  mkdirSync(join(configDir, "tls"), { recursive: true });
  writeFileSync(join(configDir, "openbao.hcl"), 'storage "raft" { path = "/var/lib/openbao" }\n');
  chmodSync(join(configDir, "openbao.hcl"), 0o644);
  const { privateKey } = generateKeyPairSync("ec", {
    namedCurve: "prime256v1",
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  writeFileSync(join(configDir, "tls", "server.key"), privateKey);
  chmodSync(join(configDir, "tls", "server.key"), 0o600);
  writeFileSync(join(configDir, "tls", "ca.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  chmodSync(join(configDir, "tls", "ca.crt"), 0o640);
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, stringify({ ...policy, encryption: { age: [await identityToRecipient(ageId)] }, files: { paths: [configDir] } }));
  const r = await runVrb(["backup", "--policy", policyFile, "--json"], cliEnv(env));
  expect(r.code, r.stderr).toBe(0);
  report = JSON.parse(r.stdout) as BackupReport;
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKeyFor(report.key) }));
  manifest = JSON.parse(Buffer.from(await res.Body!.transformToByteArray()).toString("utf8")) as SnapshotManifest;
  expect(manifest.files?.entries).toHaveLength(3);
});

afterAll(() => s3.destroy());

/** Every stored file under `root` (at its original path below it) has its original bytes and mode. */
function expectInstalled(root: string) {
  for (const e of manifest.files!.entries) {
    const to = join(root, e.path);
    expect(sha(readFileSync(to)), e.path).toBe(sha(readFileSync(e.path)));
    expect(statSync(to).mode & 0o777, e.path).toBe(statSync(e.path).mode & 0o777);
  }
  expect(statSync(join(root, configDir, "tls", "server.key")).mode & 0o777).toBe(0o600);
}

describe("DR stack files step (real S3, the program's own scripts)", () => {
  let fetched: string;
  let fetch: Res;

  it("remote: the fetch script prints the verified tar (base64) and the snapshot it used; the install script puts back identical bytes and modes", async () => {
    const target = join(dir, "node-remote");
    mkdirSync(target);
    const run = await drRun({ via: "remote", user: "ubuntu", sudo: false, dir: target, nodes: [{ host: "vault-0.example.com" }] });
    expect(run.error).toBeUndefined();
    fetch = run.resources.find((r) => r.name === "files-fetch")!;
    const install = run.resources.find((r) => r.name === "files-node-1")!;
    expect(install.type).toBe("command:remote:Command");
    // The identity reaches vrb on stdin, as a secret; the command strings hold no key material.
    expect(plainOccurrences(fetch.inputs, ageId)).toEqual([]);
    expect(unwrap(fetch.inputs.stdin)).toBe(ageId);
    const r = await sh(fetch.inputs.create as string, {
      cwd: projectDir,
      stdin: unwrap(fetch.inputs.stdin) as string,
      env: { ...credentials(), ...(fetch.inputs.environment as Record<string, string>) },
    });
    expect(r.code, r.stderr).toBe(0);
    fetched = r.stdout;
    // The restore gets exactly this snapshot (what the program reads from the fetch's stderr).
    expect(snapshotUsed(r.stderr)).toBe(`s3://${bucket}/${report.key}`);
    expect(r.stderr).not.toContain("PRIVATE KEY");
    const inst = await sh(install.inputs.create as string, { stdin: fetched });
    expect(inst.code, inst.stderr).toBe(0);
    expect(inst.stdout).toContain("installed 3 file(s)");
    expectInstalled(target);
  });

  it("local: one install per node into its own folder (owner set), from the same fetch output", async () => {
    const run = await drRun({
      via: "local",
      owner: userInfo().username,
      nodes: [
        { host: "node-1", dir: join(dir, "local-1") },
        { host: "node-2", dir: join(dir, "local-2") },
      ],
    });
    expect(run.error).toBeUndefined();
    const installs = run.resources.filter((r) => r.name.startsWith("files-node-"));
    expect(installs.map((r) => r.type)).toEqual(["command:local:Command", "command:local:Command"]);
    // The folders do not exist yet: the install makes them.
    for (const [i, inst] of installs.entries()) {
      const r = await sh(inst.inputs.create as string, { cwd: projectDir, stdin: fetched });
      expect(r.code, r.stderr).toBe(0);
      expectInstalled(join(dir, `local-${i + 1}`));
      expect(statSync(join(dir, `local-${i + 1}`, configDir, "openbao.hcl")).uid).toBe(userInfo().uid);
    }
  });

  it("vrb files --out -: a tar of exactly the stored entries on stdout (keys 0600), refused on a terminal", async () => {
    const ref = `s3://${bucket}/${report.key}`;
    const args = [vrbBin(), "files", ref, "--out", "-", "--identity", idFile];
    const r = spawnSync(process.execPath, args, { env: { ...process.env, ...cliEnv(env), HOME: dir }, maxBuffer: 1 << 24 });
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toContain(`wrote 3 file(s) of ${ref} to stdout`);
    // The stored plaintext archive: the stored object decrypted with the engine's own stream.
    const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifest.files!.key }));
    const { plain } = await decryptingStream(
      manifest.encryption!,
      await loadIdentities([{ name: "t", text: ageId }]),
      Readable.from([Buffer.from(await stored.Body!.transformToByteArray())]),
      "t",
    );
    const chunks: Buffer[] = [];
    for await (const c of plain) chunks.push(c as Buffer);
    const want = await tarEntries(Buffer.concat(chunks));
    const got = await tarEntries(r.stdout);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, w] of want) expect(got.get(name)!.data.equals(w.data), name).toBe(true);
    expect(got.get(join(configDir, "tls", "server.key").slice(1))!.mode).toBe(0o600);
    // base64 through the same pipe the install uses.
    expect(Buffer.from(fetched, "base64").equals(r.stdout)).toBe(true);

    // A terminal on stdout (script(1) gives the command a pty): refused, exit 2, nothing printed.
    const tty = spawnSync("script", ["-qec", [process.execPath, ...args].map((a) => `'${a}'`).join(" "), "/dev/null"], {
      env: { ...process.env, ...cliEnv(env), HOME: dir },
    });
    expect(tty.status).toBe(2);
    expect(tty.stdout.toString()).toContain("which is a terminal");
    expect(tty.stdout.toString()).not.toContain("PRIVATE KEY");
  });

  it("a snapshot without files: the fetch script fails (exit 2) naming the fix, before any node is touched", async () => {
    // A newer backup of the same cluster without `files` becomes `latest`.
    const policyFile = join(dir, "policy-nofiles.yaml");
    writeFileSync(policyFile, stringify(policy));
    const b = await runVrb(["backup", "--policy", policyFile, "--json"], cliEnv(env));
    expect(b.code, b.stderr).toBe(0);
    // The same fetch script as above (ref `latest`), run again.
    const r = await sh(fetch.inputs.create as string, {
      cwd: projectDir,
      stdin: unwrap(fetch.inputs.stdin) as string,
      env: { ...credentials(), ...(fetch.inputs.environment as Record<string, string>) },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("has no configuration files");
    expect(r.stderr).toContain("remove vault-raft-backup-dr:files");
  });
});
