import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../engine/package-info.js";

/*
 * The published declarations are part of the API: a Pulumi program that imports the package must
 * type-check with `skipLibCheck: false`, which also checks every third-party declaration our
 * `.d.ts` files reach. The package is packed from the existing build (`npm test` builds first) and
 * unpacked into a scratch project; its dependencies are linked from this repository's
 * node_modules instead of installed, so nothing is downloaded and the check takes seconds.
 */

const root = packageRoot();
let scratch: string;

function run(cmd: string, args: string[], cwd: string): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** `npm pack` of the repository as it is built, into `dir`; the tarball's path. */
function packBuild(dir: string): string {
  if (!existsSync(join(root, "dist", "engine", "index.d.ts"))) throw new Error("no build to pack: run `npm run build` first");
  const packed = run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], root);
  if (packed.status !== 0) throw new Error(`npm pack failed:\n${packed.output}`);
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack wrote no tarball:\n${packed.output}`);
  return join(dir, tarball);
}

/** Links a package of this repository's node_modules into the scratch project, as npm would have installed it. */
function linkDependency(name: string): void {
  const from = join(root, "node_modules", name);
  if (!existsSync(from)) throw new Error(`${name} is not in ${join(root, "node_modules")}: run \`npm ci\``);
  const to = join(scratch, "node_modules", name);
  mkdirSync(dirname(to), { recursive: true });
  symlinkSync(from, to, "dir");
}

const consumerProgram = `import * as pulumi from "@pulumi/pulumi";
import { BackupPolicy, SnapshotBucket } from "vault-raft-backup";
import { openStore, runBackup, validatePolicy, type BackupReport } from "vault-raft-backup/engine";

const policy = validatePolicy({
  cluster: { name: "prod", nodes: ["https://vault-0.example:8200"] },
  destination: { bucket: "acme-vault-snapshots", prefix: "vault/", region: "eu-west-1" },
  objectLock: { mode: "COMPLIANCE", days: 30 },
});

const bucket = new SnapshotBucket("snapshots", { destination: policy.destination, objectLock: policy.objectLock });
const backup = new BackupPolicy("prod", { policy, snapshot: false });
export const bucketName: pulumi.Output<string> = bucket.bucketName;
export const statusKey: string = backup.statusKey;

export async function takeBackup(token: string): Promise<BackupReport> {
  const store = await openStore(policy.destination);
  return runBackup({ policy, token, store });
}

// The package's types are real, not \`any\`: a misuse must be an error.
// @ts-expect-error the cluster's name is a string
export const clusterName: number = policy.cluster.name;
`;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "vrb-consumer-"));
  const tarball = packBuild(scratch);
  const unpacked = join(scratch, "node_modules", "vault-raft-backup");
  mkdirSync(unpacked, { recursive: true });
  const untar = run("tar", ["-xzf", tarball, "-C", unpacked, "--strip-components=1"], scratch);
  if (untar.status !== 0) throw new Error(`cannot unpack ${tarball}:\n${untar.output}`);
  // What installing the tarball would bring: its dependencies, plus the consumer's own tools.
  const published = JSON.parse(readFileSync(join(unpacked, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  for (const name of [...Object.keys(published.dependencies ?? {}), "typescript", "@types/node"]) linkDependency(name);
  writeFileSync(
    join(scratch, "package.json"),
    JSON.stringify({ name: "vrb-consumer", private: true, type: "module", dependencies: { "vault-raft-backup": `file:${tarball}` } }, null, 2),
  );
  writeFileSync(
    join(scratch, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023"], types: ["node"], strict: true, skipLibCheck: false, noEmit: true },
      include: ["index.ts"],
    }),
  );
  writeFileSync(join(scratch, "index.ts"), consumerProgram);
}, 60_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("the published package's types", () => {
  it("a consumer's Pulumi program importing the components and the engine type-checks with skipLibCheck false", () => {
    const tsc = run(process.execPath, [join(scratch, "node_modules", "typescript", "bin", "tsc"), "-p", scratch], scratch);
    expect(tsc.output).toBe("");
    expect(tsc.status).toBe(0);
  }, 120_000);
});
