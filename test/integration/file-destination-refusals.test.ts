import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureKvV2, kvPut } from "../../engine/vault/kv-v2.js";
import { cliEnv, rootClient, runVrb, sharedEnv, tempDir, vrbBin, vrbEnvironment } from "../support/env.js";

// What a directory (type: file) cannot do, said by the commands that need it, before anything
// changes: legal holds (vrb hold / release) and pre-signed URLs (vrb presign). The rest of the CLI
// on a directory is test/integration/store-file.test.ts.
describe("vrb hold, release and presign on a directory destination (type: file, real OpenBao)", () => {
  const env = sharedEnv();
  const cluster = `fs-refuse-${Date.now().toString(36)}`;
  const dir = tempDir("file-refusals");
  const path = join(dir, "backups");
  mkdirSync(path);
  const policy = join(dir, "policy.yaml");
  writeFileSync(policy, [`cluster: { name: ${cluster}, nodes: [${env.nodes.map((n) => n.apiAddr).join(", ")}] }`, `destination: { type: file, path: ${path} }`].join("\n"));
  const vrb = (...args: string[]) => runVrb([...args, "--policy", policy], cliEnv(env));
  const filesUnder = (d: string): string[] => readdirSync(d, { recursive: true, encoding: "utf8" }).sort();

  it("each is refused with exit 1 naming the file store and what to do instead; the stored files stay as they were", async () => {
    const backup = await vrb("backup", "--json");
    expect(backup.code, backup.stderr).toBe(0);
    const key = (JSON.parse(backup.stdout) as { key: string }).key;
    const before = filesUnder(path);

    for (const command of ["hold", "release"]) {
      const r = await vrb(command, key);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`destination 'primary' is a file store, which has no legal holds: file://${path}/${key} cannot be`);
      expect(r.stderr).toContain("copy the snapshot to a store that has them");
    }
    const presign = await vrb("presign", "latest");
    expect(presign.code, presign.stderr).toBe(1);
    expect(presign.stderr).toContain(
      `destination 'primary' is a file store, which cannot make pre-signed URLs: hand file://${path}/${key} over with 'vrb export --to-url' instead`,
    );
    expect(presign.stdout).toBe("");

    expect(filesUnder(path)).toEqual(before);
    const list = await vrb("list", "--json");
    expect((JSON.parse(list.stdout) as { snapshots: { key: string; status: string }[] }).snapshots).toEqual([expect.objectContaining({ key, status: "good" })]);
  });
});

// A full disk: the directory is a 512 KiB tmpfs in a mount namespace of the test's own (it goes with
// the namespace), and the snapshot is more than 1 MiB. vrb backup, then vrb status, run in there.
describe("vrb backup into a full directory (type: file on a 512 KiB tmpfs, real OpenBao)", () => {
  const env = sharedEnv();
  const cluster = `fs-full-${Date.now().toString(36)}`;
  const dir = tempDir("file-full");
  const path = join(dir, "backups");
  const out = join(dir, "out");
  mkdirSync(path);
  mkdirSync(out);
  const policy = join(dir, "policy.yaml");
  writeFileSync(policy, [`cluster: { name: ${cluster}, nodes: [${env.nodes.map((n) => n.apiAddr).join(", ")}] }`, `destination: { type: file, path: ${path} }`].join("\n"));

  /** Runs backup, status and a listing of the directory in the namespace; their outputs land in `out`. */
  function inFullDisk(): Promise<number> {
    const script = [
      'mount -t tmpfs -o size=512k tmpfs "$DIR" || exit 90',
      '"$VRB" backup --policy "$POLICY" > "$OUT/backup.out" 2> "$OUT/backup.err"; echo $? > "$OUT/backup.code"',
      '"$VRB" status --policy "$POLICY" --json > "$OUT/status.json" 2> "$OUT/status.err"',
      'find "$DIR" -type f | sort > "$OUT/files"',
    ].join("\n");
    // Root makes the namespace itself; anyone else maps themself to root in a user namespace first.
    const unshare = ["--mount", "--propagation", "private", ...(process.getuid?.() === 0 ? [] : ["--map-root-user"])];
    const vars = vrbEnvironment({ ...cliEnv(env), DIR: path, OUT: out, POLICY: policy, VRB: vrbBin() });
    return new Promise((resolve, reject) => {
      let stderr = "";
      const child = spawn("unshare", [...unshare, "sh", "-c", script], { env: vars, stdio: ["ignore", "ignore", "pipe"] });
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", (err) => reject(new Error(`unshare (util-linux) could not start: ${err.message}`)));
      child.on("close", (code) => (code === 0 ? resolve(code) : reject(new Error(`the mount namespace with a tmpfs could not be made (exit ${code}): ${stderr}`))));
    });
  }

  it("fails at once with exit 1 naming ENOSPC and what to free, without retrying; no temporary file is left and the failure is on record", async () => {
    // Random values do not compress: the snapshot is well over the 512 KiB the directory has.
    const client = rootClient(env);
    await ensureKvV2(client, "fs-full");
    for (const part of ["a", "b", "c"]) await kvPut(client, "fs-full", `bulk-${part}`, { value: randomBytes(384 * 1024).toString("base64") });
    await client.close();

    await inFullDisk();
    const read = (name: string) => readFileSync(join(out, name), "utf8");
    const stderr = read("backup.err");
    expect(read("backup.code").trim(), stderr).toBe("1");
    expect(stderr).toMatch(new RegExp(`file://${path}/\\S+: ENOSPC: no space left on device`));
    expect(stderr).toContain("free space (or quota) on that file system, then run the backup again (not retried: every attempt would fail the same way)");
    expect(stderr).not.toMatch(/retrying in/);
    // Nothing of the failed upload is left; the status record (and the lease, released) is all there is.
    expect(
      read("files")
        .trim()
        .split("\n")
        .map((f) => f.slice(path.length + 1)),
    ).toEqual([`${cluster}/vrb-status.json`]);
    const status = JSON.parse(read("status.json")) as { consecutiveFailures: number; lastError?: { message: string; stage?: string } };
    expect(status.consecutiveFailures).toBe(1);
    expect(status.lastError?.message).toContain("ENOSPC");
  });
});
