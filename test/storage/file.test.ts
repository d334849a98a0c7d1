import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../engine/errors.js";
import type { ObjectStore } from "../../engine/storage/object-store.js";
import { withFileLock } from "../../engine/storage/file/lock.js";
import { openStore } from "../../engine/storage/registry.js";
import { describeStoreContract } from "./contract.js";

// The file store on a real temporary directory: the shared contract, then what only a directory
// has: a crashed writer (kill -9 of another process) leaves nothing that lists as an object, a
// missing or unwritable path is refused, a missing path is never created.

const here = dirname(fileURLToPath(import.meta.url));

function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `vrb-file-${label}-`));
}

async function fileStore(path: string, prefix = "vault/"): Promise<ObjectStore> {
  return openStore({ type: "file", path, prefix });
}

describeStoreContract(
  "file (a temporary directory)",
  async () => {
    const dir = tempDir("contract");
    return { store: await fileStore(dir), stop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  {
    versions: false,
    lock: false,
    legalHold: false,
    presign: false,
    containerField: "destination.path",
    missingContainer: join(tmpdir(), `vrb-file-missing-${randomBytes(6).toString("hex")}`),
  },
);

/**
 * A child process that uses the store as `vrb` does: the store's modules bundled (esbuild, from
 * node_modules: nothing downloaded) into one script, which a test then runs, kills or runs as
 * another user.
 */
let childDir: string;
const childScript = () => join(childDir, "child.mjs");

const CHILD_SOURCE = `
import { FileStore } from ${JSON.stringify(resolve(here, "../../engine/storage/file/store.ts"))};
const [mode, path, key] = process.argv.slice(2);
const store = new FileStore({ type: "file", path, prefix: "" }, "primary");
if (mode === "check") {
  try {
    await store.checkContainer();
    console.log(JSON.stringify({ ok: true }));
  } catch (err) {
    console.log(JSON.stringify({ name: err.name, field: err.field, message: err.message }));
  }
} else if (mode === "big") {
  // 512 MiB through 8 MiB parts, as a backup writes them: the peak RSS says whether memory stayed fixed.
  const upload = store.createUpload({ key, partSize: 8 * 1024 * 1024, queueSize: 3 });
  const chunk = Buffer.alloc(1024 * 1024, 9);
  for (let i = 0; i < 512; i++) if (!upload.write(chunk)) await new Promise((r) => upload.once("drain", r));
  await new Promise((r, j) => upload.end((err) => (err ? j(err) : r())));
  console.log(JSON.stringify({ bytes: upload.bytes, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
} else {
  // "stream": killed while bytes flow; "complete": killed while beforeComplete waits (every byte written and fsynced).
  const upload = store.createUpload({
    key,
    partSize: 1024 * 1024,
    queueSize: 1,
    onUploaded: () => process.stdout.write("acknowledged\\n"),
    beforeComplete: () =>
      new Promise(() => {
        setInterval(() => undefined, 1000); // stays alive until killed
        process.stdout.write("before-complete\\n");
      }),
  });
  const chunk = Buffer.alloc(256 * 1024, 7);
  let sent = 0;
  const more = () => {
    if (mode === "complete" && sent >= 4 * 1024 * 1024) return upload.end();
    sent += chunk.length;
    if (upload.write(chunk)) setImmediate(more);
    else upload.once("drain", more);
  };
  more();
}
`;

beforeAll(async () => {
  childDir = tempDir("child");
  writeFileSync(join(childDir, "child.ts"), CHILD_SOURCE);
  await build({ entryPoints: [join(childDir, "child.ts")], outfile: childScript(), bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "error" });
  // Readable by an unprivileged user for the permission case.
  chmodSync(childDir, 0o755);
});

afterAll(() => {
  if (childDir) rmSync(childDir, { recursive: true, force: true });
});

/** Runs the child until its stdout shows `until`, then kills it with SIGKILL; resolves with its stdout once it is gone. */
function runAndKill(args: string[], until: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [childScript(), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(until)) child.kill("SIGKILL");
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (sig === "SIGKILL") resolvePromise(out);
      else reject(new Error(`the child exited (${code}) before it was killed; stdout: ${out}; stderr: ${err}`));
    });
  });
}

/** checkContainer's outcome in a child run as `uid` (when given) */
function checkInChild(path: string, uid?: number): Promise<{ ok?: boolean; name?: string; field?: string; message?: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [childScript(), "check", path], { stdio: ["ignore", "pipe", "pipe"], ...(uid === undefined ? {} : { uid, gid: uid }) });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolvePromise(JSON.parse(out) as { ok?: boolean }) : reject(new Error(`check child exited ${code}: ${err}`))));
  });
}

describe("file store: what only a directory has", () => {
  let dir: string;
  let store: ObjectStore;

  beforeAll(async () => {
    dir = tempDir("specific");
    store = await fileStore(dir, "");
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ["while bytes stream", "stream", "acknowledged"],
    ["while beforeComplete waits (every byte written)", "complete", "before-complete"],
  ])("a writer killed with SIGKILL %s leaves nothing that lists as an object; the orphan lists as an unfinished upload and aborts", async (_label, mode, until) => {
    const key = `crash-${mode}/prod/2026/01/02/snap.snap`;
    await runAndKill([mode, dir, key], until);

    expect(await store.list("")).toEqual([]);
    expect(await store.head(key)).toBeUndefined();
    expect(await store.listFolders("")).toEqual([]);
    const orphans = await store.listIncompleteUploads("");
    expect(orphans).toHaveLength(1);
    expect(orphans[0]).toMatchObject({ key });
    expect(orphans[0]!.started).toBeInstanceOf(Date);
    // The bytes are there, under a name no listing shows.
    const folder = join(dir, `crash-${mode}`, "prod", "2026", "01", "02");
    expect(readdirSync(folder)).toEqual([orphans[0]!.id]);
    expect(statSync(join(folder, orphans[0]!.id)).size).toBeGreaterThan(0);

    const aborted = await store.abortUploads(key);
    expect(aborted).toEqual({ aborted: [orphans[0]!.id], left: [] });
    expect(await store.listIncompleteUploads("")).toEqual([]);
  });

  it("a 512 MiB upload runs in fixed memory: the writer's peak RSS stays far below the object's size", async () => {
    const key = "big/prod/snap.snap";
    const out = await new Promise<string>((resolvePromise, reject) => {
      const child = spawn(process.execPath, [childScript(), "big", dir, key], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolvePromise(stdout) : reject(new Error(`big upload child exited ${code}: ${stderr}`))));
    });
    const { bytes, maxRssMiB } = JSON.parse(out) as { bytes: number; maxRssMiB: number };
    expect(bytes).toBe(512 * 1024 * 1024);
    expect((await store.head(key))?.bytes).toBe(bytes);
    // Node itself is about 45 MiB; one 8 MiB part buffer and the stream's queue come on top. Holding the object would be 512 MiB more.
    expect(maxRssMiB).toBeLessThan(128);
    await store.delete(key);
  });

  it("a path that does not exist is a ConfigError on destination.path naming the fix, and no write creates it", async () => {
    const missing = join(dir, "not-mounted", "vault");
    const s = await fileStore(missing);
    const err = await s.checkContainer().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: "destination.path" });
    expect((err as Error).message).toContain(`mkdir -p ${missing}`);
    expect((err as Error).message).toContain("mount");

    await expect(s.writeText("vault/prod/status.json", "{}")).rejects.toThrow(/ENOENT.*does not exist/);
    await expect(s.list("vault/")).rejects.toThrow("is the share mounted?");
    const upload = s.createUpload({ key: "vault/prod/snap.snap", partSize: 1024, queueSize: 1 });
    upload.on("error", () => undefined);
    upload.end(Buffer.alloc(5000));
    await new Promise((r) => upload.once("close", r));
    expect(upload.result).toBeUndefined();
    expect(upload.storeError).toBeDefined();
    expect(existsSync(missing)).toBe(false);
  });

  it("a path that is a file is a ConfigError on destination.path", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const err = await (await fileStore(file)).checkContainer().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain("is not a directory");
  });

  it("a directory this user may not write is a ConfigError on destination.path naming the fix", async () => {
    const readOnly = tempDir("read-only");
    try {
      chmodSync(readOnly, 0o555);
      // root writes anywhere: the job then runs as an unprivileged user, as a backup job should.
      const outcome = process.getuid?.() === 0 ? await checkInChild(readOnly, 65534) : await checkInChild(readOnly);
      expect(outcome).toMatchObject({ name: "ConfigError", field: "destination.path" });
      expect(outcome.message).toMatch(/not writable by this user|refuses new files/);
      expect(outcome.message).toContain("permissions");
      expect(await checkInChild(dir)).toEqual({ ok: true });
    } finally {
      rmSync(readOnly, { recursive: true, force: true });
    }
  });

  it("keys that would leave the directory or use the store's own names are refused before anything is written", async () => {
    for (const key of ["../escape.json", "a/../../escape.json", "/etc/passwd", "a//b.json", "a/.b.json.vrb-upload-1234", "a/.b.json.vrb-lock"]) {
      const err = await store.writeText(key, "x").catch((e: unknown) => e);
      expect(err, key).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(key);
    }
    expect(existsSync(join(dirname(dir), "escape.json"))).toBe(false);
  });

  it("files are written owner/group-readable only, and deletes remove the folders they empty", async () => {
    await store.writeText("perm/prod/2026/status.json", "{}");
    expect(statSync(join(dir, "perm", "prod", "2026", "status.json")).mode & 0o777).toBe(0o640);
    expect(await store.listFolders("perm/")).toEqual(["perm/prod/"]);
    await store.delete("perm/prod/2026/status.json");
    expect(existsSync(join(dir, "perm"))).toBe(false);
    expect(await store.listFolders("")).toEqual([]);
  });

  it("every object of a folder deleted at once (a prune, several snapshots at a time): each delete succeeds and the emptied folders go", async () => {
    for (let round = 0; round < 5; round++) {
      const keys = Array.from({ length: 24 }, (_, i) => `at-once/prod/2026/01/0${round}/snap-${i}.snap`);
      for (const key of keys) await store.writeText(key, "x");
      const outcomes = await Promise.allSettled(keys.map((key) => store.delete(key)));
      expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
      expect(await store.list("at-once/")).toEqual([]);
      expect(existsSync(join(dir, "at-once"))).toBe(false);
    }
  });

  it("a writer's lock left by a killed process is taken over; a held one is waited for", async () => {
    const lockPath = join(dir, ".status.json.vrb-lock");
    writeFileSync(lockPath, "4242\n"); // what a writer killed while holding it leaves
    expect(await withFileLock(lockPath, async () => "ran", { staleMs: 300 })).toBe("ran");
    expect(existsSync(lockPath)).toBe(false);

    const events: string[] = [];
    let release!: () => void;
    const holding = new Promise<void>((r) => (release = r));
    const acquired = new Promise<void>((started) => {
      void withFileLock(lockPath, async () => {
        events.push("first holds");
        started();
        await holding;
        events.push("first releases");
      });
    });
    await acquired;
    const second = withFileLock(lockPath, async () => events.push("second holds"), { staleMs: 60_000 });
    await new Promise((r) => setTimeout(r, 200));
    release();
    await second;
    expect(events).toEqual(["first holds", "first releases", "second holds"]);
  });

  it("lock, legal hold and presign say a directory has no immutability and what to use instead", async () => {
    const obj = await store.writeText("worm/x.json", "{}");
    await expect(store.lock(obj, "COMPLIANCE", new Date(Date.now() + 86_400_000))).rejects.toThrow(/no immutability.*S3 Object Lock, GCS retention or Azure immutability/);
    await expect(store.setLegalHold(obj, true)).rejects.toThrow(/no immutability/);
  });

  it("url and parseUrl: file:///abs/dir/key; a file elsewhere is a key in its own directory", () => {
    expect(store.url("vault/prod/a.snap")).toBe(`file://${dir}/vault/prod/a.snap`);
    expect(store.parseUrl(`file://${dir}/vault/prod/a.snap`)).toEqual({ container: dir, key: "vault/prod/a.snap" });
    expect(store.parseUrl("file:///srv/elsewhere/a.snap")).toEqual({ container: "/srv/elsewhere", key: "a.snap" });
    expect(store.parseUrl("s3://bucket/a.snap")).toBeUndefined();
  });
});
