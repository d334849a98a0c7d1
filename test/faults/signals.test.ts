import { spawn } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { stringify } from "yaml";
import { type Product } from "../../engine/index.js";
import { type LocalEnvironment } from "../../devenv/environment.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { PRODUCTS, cliEnv, runVrb, s3For, sharedEnvOf, tempDir, vrbBin } from "../support/env.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { alive, pidsMentioning } from "../support/processes.js";

// Issue 26 point 1: SIGTERM / Ctrl-C during a long operation. The real `vrb` (launcher and worker)
// gets a real signal while the operation is under way; it must stop at a safe point, clean up,
// say where things stand and exit 128 + the signal's number. Each run gets its own TMPDIR, so
// "nothing left in /tmp" is checked on exactly what this run made.

interface Interrupted {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What `atSignal` returned, evaluated just before the signal was sent. */
  seen: number[];
}

interface InterruptOptions {
  /** Runs just before the signal is sent; its result is `seen`. */
  atSignal?: (stderr: string) => number[];
  /** The signal is sent a second time once stderr also matches this. */
  again?: RegExp;
  /** Signal vrb's whole process group, as a terminal's Ctrl-C does, instead of its pid (as Kubernetes or `kill` does). */
  group?: boolean;
  /** Gets the function that sends the signal, for a trigger other than vrb's stderr (e.g. a request reaching a proxy). */
  arm?: (interrupt: () => void) => void;
}

/** Runs vrb, sends `signal` once its stderr matches `when`, and resolves when it has exited. */
function interruptVrb(args: string[], env: Record<string, string>, when: RegExp, signal: NodeJS.Signals, opts: InterruptOptions = {}): Promise<Interrupted> {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of ["VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN", "AWS_ENDPOINT_URL_S3", "VRB_NODES", "VRB_BUCKET", "VRB_CLUSTER", "TMPDIR"]) delete base[k];
  const child = spawn(process.execPath, [vrbBin(), ...args], {
    env: { ...base, HOME: tempDir("signals-home"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, as a shell's foreground job.
    detached: opts.group,
  });
  const send = () => (opts.group ? process.kill(-child.pid!, signal) : child.kill(signal));
  let stdout = "";
  let stderr = "";
  let seen: number[] = [];
  let sent = false;
  let resent = false;
  opts.arm?.(() => {
    if (sent) return;
    sent = true;
    send();
  });
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (!sent && when.test(stderr)) {
      sent = true;
      seen = opts.atSignal?.(stderr) ?? [];
      send();
    } else if (sent && opts.again && !resent && opts.again.test(stderr)) {
      resent = true;
      send();
    }
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr: sent ? stderr : `${stderr}\n(the signal was never sent: stderr did not match ${when})`, seen }));
  });
}

/** A backup of the shared cluster under its own prefix, by the CLI; its s3:// reference. */
async function backupOf(env: LocalEnvironment, cluster: string, prefix: string): Promise<{ ref: string; key: string }> {
  const r = await runVrb(["backup", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as { bucket: string; key: string };
  return { ref: `s3://${report.bucket}/${report.key}`, key: report.key };
}

/** The original unseal keys, one per line, as an operator keeps them. */
function keysFile(env: LocalEnvironment): string {
  const file = join(tempDir("signals-keys"), "unseal-keys");
  writeFileSync(file, env.keys!.unsealKeysB64.join("\n") + "\n", { mode: 0o600 });
  return file;
}

/** S3 in front of which every GET of a snapshot object is held `ms`: a signal sent meanwhile lands while the download is under way. */
async function slowSnapshotDownloads(env: LocalEnvironment, ms: number): Promise<FaultProxy> {
  const proxy = await new FaultProxy(env.s3!.endpoint).start();
  proxy.rules = [{ match: (req, url) => req.method === "GET" && url.pathname.endsWith(".snap"), share: 1, fault: { kind: "delay", ms } }];
  return proxy;
}

describe.each(PRODUCTS)("SIGTERM during a staged rebuild into fresh nodes (real %s)", (product: Product) => {
  const env = sharedEnvOf(product);
  const run = `${product}-${Date.now().toString(36)}`;
  const cluster = `sig-${run}`;
  const prefix = `signals-${run}/`;
  let targets: LocalNode[] = [];

  afterAll(async () => {
    await Promise.all(targets.map((n) => stopNode(n)));
  });

  it("stops before the next join, prints every node's state and the commands to finish, exits 143, leaves no temp copy and records the run as interrupted", async () => {
    const { ref } = await backupOf(env, cluster, prefix);
    targets = await startFreshNodes(tempDir("signals-targets"), 3, { idPrefix: `sig${product[0]}`, shape: { product } });
    const nodes = targets.map((n) => n.apiAddr);
    const tmp = tempDir("signals-tmp");

    const r = await interruptVrb(
      ["restore", ref, "--cluster", cluster, "--prefix", prefix, "--nodes", nodes.join(","), "--unseal-keys-file", keysFile(env)],
      { ...cliEnv(env), TMPDIR: tmp },
      /join node 2 to node 1 .*\.\.\./,
      "SIGTERM",
    );

    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toContain("vrb: SIGTERM received: stopping at the next safe point and cleaning up");
    expect(r.stderr).toMatch(/restore \(rebuild\) stopped at phase 'joining': interrupted \(SIGTERM\)/);
    // Every node's state now: node 1 serves the restored data, node 3 was never touched.
    const states = r.stderr.split("nodes now:\n")[1]?.split("\nnext:")[0] ?? "";
    expect(states.split("\n"), r.stderr).toHaveLength(3);
    expect(states).toMatch(new RegExp(`${nodes[0]!.replace(/[.:/]/g, "\\$&")}.*active`));
    expect(states).toMatch(new RegExp(`${nodes[2]!.replace(/[.:/]/g, "\\$&")}.*uninitiali[sz]ed`));
    // What to run next: the joins not done, named per node.
    expect(r.stderr).toMatch(/next: .* serves the restored data\. Not yet joined: .*operator raft join/);
    expect(r.stderr).toContain(`Not yet joined: `);
    expect(r.stderr.split("Not yet joined: ")[1]).toContain(nodes[2]);
    // The temp copy of the snapshot is gone.
    expect(readdirSync(tmp).filter((d) => d.startsWith("vrb-restore-"))).toEqual([]);

    const status = await runVrb(["status", "--cluster", cluster, "--prefix", prefix, "--json"], cliEnv(env));
    const record = JSON.parse(status.stdout) as { operations?: { restore?: { lastAttemptOk?: boolean; lastError?: { exitCode: number; kind: string; message: string } } } };
    expect(record.operations?.restore?.lastAttemptOk, status.stdout).toBe(false);
    expect(record.operations?.restore?.lastError).toMatchObject({ exitCode: 143, kind: "InterruptedError" });
    expect(record.operations?.restore?.lastError?.message).toMatch(/interrupted \(SIGTERM\)/);
  });
});

describe("SIGINT / SIGTERM during drill, verify, export and files (real OpenBao + S3)", () => {
  const env = sharedEnvOf("openbao");
  const s3 = s3For(env);
  const run = Date.now().toString(36);
  const cluster = `sig2-${run}`;
  const prefix = `signals2-${run}/`;
  let snapshot: { ref: string; key: string };
  let proxy: FaultProxy;
  const strays: number[] = [];

  beforeAll(async () => {
    snapshot = await backupOf(env, cluster, prefix);
    proxy = await slowSnapshotDownloads(env, 30_000);
  });

  afterAll(async () => {
    for (const pid of strays) if (alive(pid)) process.kill(-pid, "SIGKILL");
    await proxy.stop();
    s3.destroy();
  });

  it("a drill stopped with Ctrl-C stops its throwaway servers and removes their data, exit 130", async () => {
    const tmp = tempDir("signals-tmp");
    const r = await interruptVrb(
      ["drill", snapshot.ref, "--unseal-keys-file", keysFile(env)],
      { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url, TMPDIR: tmp },
      /download and verify snapshot \.\.\./,
      "SIGINT",
      { atSignal: (stderr) => pidsMentioning(/drill: starting \d+ fresh node\(s\) in (\S+)/.exec(stderr)![1]!) },
    );
    strays.push(...r.seen);

    expect(r.code, r.stderr).toBe(130);
    expect(r.seen, "the throwaway servers running when the signal was sent").toHaveLength(3);
    expect(r.seen.filter(alive), r.stderr).toEqual([]);
    expect(
      readdirSync(tmp).filter((d) => d.startsWith("vrb-drill-") || d.startsWith("vrb-restore-")),
      r.stderr,
    ).toEqual([]);
    expect(r.stderr).toMatch(/drill: restore \(rebuild\) stopped at preflight: interrupted \(SIGINT\) during the download/);
    expect(r.stderr).toMatch(/the throwaway cluster is gone: 3 node\(s\) stopped, \S+ removed/);
    expect(r.stderr).toMatch(/next: run the same command again\./);
    // No state of nodes that no longer exist.
    expect(r.stderr).not.toContain("nodes now:");
  });

  it("a second Ctrl-C while the drill cleans up ends vrb at once, and it says so", async () => {
    const tmp = tempDir("signals-tmp");
    const r = await interruptVrb(
      ["drill", snapshot.ref, "--unseal-keys-file", keysFile(env)],
      { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url, TMPDIR: tmp },
      /download and verify snapshot \.\.\./,
      "SIGINT",
      { atSignal: (stderr) => pidsMentioning(/drill: starting \d+ fresh node\(s\) in (\S+)/.exec(stderr)![1]!), again: /SIGINT received: stopping at the next safe point/ },
    );
    strays.push(...r.seen);
    try {
      expect(r.code, r.stderr).toBe(130);
      expect(r.stderr).toContain("vrb: SIGINT again: stopping at once; the clean-up under way was not finished");
      // Stopped before its clean-up was done: no claim that the throwaway cluster is gone.
      expect(r.stderr).not.toMatch(/the throwaway cluster is gone/);
    } finally {
      for (const pid of r.seen) if (alive(pid)) process.kill(-pid, "SIGKILL");
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("verify stopped with SIGTERM cancels its download: exit 143, no temp file", async () => {
    const tmp = tempDir("signals-tmp");
    const r = await interruptVrb(["verify", snapshot.ref], { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url, TMPDIR: tmp }, /verifying s3:\/\//, "SIGTERM");
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/interrupted \(SIGTERM\) during the download/);
    expect(r.stdout).not.toMatch(/^OK/m);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("Ctrl-C at a terminal (SIGINT to vrb's whole process group) counts once: verify stops cleanly, exit 130", async () => {
    const r = await interruptVrb(["verify", snapshot.ref], { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url }, /verifying s3:\/\//, "SIGINT", { group: true });
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr.match(/SIGINT received/g), r.stderr).toHaveLength(1);
    expect(r.stderr).not.toContain("SIGINT again");
    expect(r.stderr).toMatch(/interrupted \(SIGINT\) during the download/);
  });

  it("files --out DIR stopped with SIGTERM while it downloads writes nothing under DIR, exit 143", async () => {
    const conf = tempDir("signals-conf");
    writeFileSync(join(conf, "openbao.hcl"), 'storage "raft" { path = "/var/lib/openbao" }\n', { mode: 0o644 });
    const policy = join(conf, "policy.yaml");
    writeFileSync(
      policy,
      stringify({
        cluster: { name: `${cluster}-files`, nodes: env.nodes.map((n) => n.apiAddr) },
        destination: { bucket: env.bucket!, prefix, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
        files: { paths: [conf] },
      }),
    );
    const b = await runVrb(["backup", "--policy", policy, "--json"], cliEnv(env));
    expect(b.code, b.stderr).toBe(0);
    const ref = `s3://${env.bucket!}/${(JSON.parse(b.stdout) as { key: string }).key}`;
    const out = tempDir("signals-out");
    const tmp = tempDir("signals-tmp");
    const held = await new FaultProxy(env.s3!.endpoint).start();
    try {
      const r = await interruptVrb(["files", ref, "--out", out], { ...cliEnv(env), AWS_ENDPOINT_URL_S3: held.url, TMPDIR: tmp }, /$^/, "SIGTERM", {
        // The signal goes when the files archive's download reaches S3 (held there meanwhile).
        arm: (interrupt) => {
          held.rules = [
            {
              match: (req, url) => {
                const hit = req.method === "GET" && url.pathname.endsWith(".files.tar");
                if (hit) interrupt();
                return hit;
              },
              share: 1,
              fault: { kind: "delay", ms: 30_000 },
            },
          ];
        },
      });
      expect(r.code, r.stderr).toBe(143);
      expect(r.stderr).toMatch(/interrupted \(SIGTERM\) during the files download/);
      expect(readdirSync(out, { recursive: true })).toEqual([]);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      await held.stop();
    }
  });

  it("export stopped with SIGTERM leaves nothing at the destination: no snapshot object, no manifest, exit 143", async () => {
    const toKey = `exported-${run}/${snapshot.key.split("/").pop()!}`;
    const manifestKey = `${toKey}.manifest.json`;
    const put = (Key: string) => getSignedUrl(s3, new PutObjectCommand({ Bucket: env.bucket!, Key }), { expiresIn: 900 });
    const r = await interruptVrb(
      ["export", snapshot.ref, "--to-url", await put(toKey), "--manifest-url", await put(manifestKey)],
      { ...cliEnv(env), AWS_ENDPOINT_URL_S3: proxy.url },
      /exporting s3:\/\//,
      "SIGTERM",
    );
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toMatch(/interrupted \(SIGTERM\) during the export/);
    for (const Key of [toKey, manifestKey]) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: env.bucket!, Key })).catch((e: { name?: string }) => e.name);
      expect(head, `${Key} at the destination`).toBe("NotFound");
    }
  });
});
