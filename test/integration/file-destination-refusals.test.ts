import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliEnv, runVrb, sharedEnv, tempDir } from "../support/env.js";

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
