import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cliEnv, PRODUCTS, runVrb, sharedEnvOf, tempDir } from "../support/env.js";

/** A port nothing listens on: a store there does not answer (connection refused). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Listed {
  destination: { name: string; type: string; url: string };
  snapshots: { key: string; status: string }[];
}

// A policy whose primary is the shared S3 bucket and whose copy 'offsite' is a directory: every
// command that reads snapshots reads the one --destination names, and a restore whose store does
// not answer says which copy to use instead. The copy is filled by a backup whose primary is that
// directory, so the test holds whether or not the backup also writes copies.
describe.each(PRODUCTS)("%s: --destination on a policy with an off-site copy (S3 primary, directory copy)", (product) => {
  const env = sharedEnvOf(product);
  const cluster = `dest-${product}-${Date.now().toString(36)}`;
  const dir = tempDir("destinations");
  const copyPath = join(dir, "offsite");
  mkdirSync(copyPath);
  const nodes = env.nodes.map((n) => n.apiAddr).join(", ");
  const s3 = (endpoint: string) => `destination: { bucket: ${env.bucket!}, prefix: ${cluster}/, endpoint: "${endpoint}", region: ${env.s3!.region}, forcePathStyle: true }`;
  const copies = `copies: [{ type: file, name: offsite, path: ${copyPath}, prefix: vault/ }]`;
  const write = (name: string, lines: string[]) => {
    const file = join(dir, name);
    writeFileSync(file, lines.join("\n"));
    return file;
  };
  const policy = write("policy.yaml", [`cluster: { name: ${cluster}, nodes: [${nodes}] }`, s3(env.s3!.endpoint), copies]);
  const copyAsPrimary = write("copy-as-primary.yaml", [`cluster: { name: ${cluster}, nodes: [${nodes}] }`, `destination: { type: file, path: ${copyPath}, prefix: vault/ }`]);
  const vrb = (args: string[], file = policy, extra: Record<string, string> = {}) => runVrb([...args, "--policy", file], cliEnv(env, extra));
  const copyUrl = `file://${copyPath}/vault/`;
  let s3Key: string;
  let copyKey: string;

  it("lists, verifies and reports the status of the copy with --destination offsite, and the primary without it", async () => {
    const toS3 = await vrb(["backup", "--json"]);
    expect(toS3.code, toS3.stderr).toBe(0);
    s3Key = (JSON.parse(toS3.stdout) as { key: string }).key;
    const toCopy = await vrb(["backup", "--json"], copyAsPrimary);
    expect(toCopy.code, toCopy.stderr).toBe(0);
    copyKey = (JSON.parse(toCopy.stdout) as { key: string }).key;

    const copyList = await vrb(["list", "--destination", "offsite", "--json"]);
    expect(copyList.code, copyList.stderr).toBe(0);
    const listed = JSON.parse(copyList.stdout) as Listed;
    expect(listed.destination).toEqual({ name: "offsite", type: "file", url: copyUrl });
    expect(listed.snapshots).toContainEqual(expect.objectContaining({ key: copyKey, status: "good" }));
    expect(copyList.stderr).toContain(`reading destination 'offsite'`);

    const primaryList = await vrb(["list", "--json"]);
    expect(primaryList.code, primaryList.stderr).toBe(0);
    const primary = JSON.parse(primaryList.stdout) as Listed;
    expect(primary.destination).toEqual({ name: "primary", type: "s3", url: `s3://${env.bucket!}/${cluster}/` });
    expect(primary.snapshots.map((s) => s.key)).toContain(s3Key);
    expect(primary.snapshots.map((s) => s.key)).not.toContain(copyKey);

    const verify = await vrb(["verify", "latest", "--destination", "offsite"]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`OK file://${copyPath}/${copyKey}`);

    // The status record of a copy lives beside the copy's snapshots.
    const status = await vrb(["status", "--destination", "offsite", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      location: `file://${copyPath}/vault/${cluster}/vrb-status.json`,
      destination: { name: "offsite", url: copyUrl },
      newestGood: { key: copyKey },
    });
  });

  it("prune without --destination applies the retention to each destination in turn, each reported by name", async () => {
    const prune = await vrb(["prune", "--dry-run", "--keep-last", "1", "--json"]);
    expect(prune.code, prune.stderr).toBe(0);
    const report = JSON.parse(prune.stdout) as { ok: boolean; destinations: { destination: { name: string; url: string }; kept: { key: string }[] }[] };
    expect(report.ok).toBe(true);
    expect(report.destinations.map((d) => d.destination.name)).toEqual(["primary", "offsite"]);
    expect(report.destinations[1]!.destination.url).toBe(copyUrl);
    expect(report.destinations[1]!.kept.map((k) => k.key)).toContain(copyKey);

    const one = await vrb(["prune", "--dry-run", "--destination", "offsite", "--json"]);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ dryRun: true, destination: { name: "offsite", url: copyUrl } });
  });

  it("an unknown --destination is bad input (exit 2) naming the policy's destinations, before anything is read", async () => {
    for (const command of [["list"], ["verify", "latest"], ["status"], ["restore", "latest", "--nodes", "http://127.0.0.1:1"]]) {
      const r = await vrb([...command, "--destination", "ofsite"]);
      expect(r.code, `${command[0]}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain("--destination 'ofsite' is not a destination of this policy; it has 'primary', 'offsite'");
    }
  });

  describe("with the S3 endpoint at a closed port", () => {
    let down: string;
    const advice = () =>
      new RegExp(`s3://${env.bucket!}/${cluster}/ did not answer \\(.+\\); this policy has copies: 'offsite' \\(${copyUrl}\\): run the same command with --destination offsite`);

    it("restore latest names the copy and the --destination command, before touching any node", async () => {
      down = write("s3-down.yaml", [`cluster: { name: ${cluster}, nodes: [${nodes}] }`, s3(`http://127.0.0.1:${await closedPort()}`), copies]);
      const target = `http://127.0.0.1:${await closedPort()}`;
      const r = await vrb(["restore", "latest", "--nodes", target], down);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain("failed at preflight");
      expect(r.stderr).toMatch(advice());
      // The failure came from the store: the restore never got as far as asking the target nodes.
      expect(r.stderr).not.toContain("check target nodes");
    });

    it("drill says the same before any throwaway node starts", async () => {
      const r = await vrb(["drill", "--json"], down);
      expect(r.code, r.stderr).toBe(1);
      expect((JSON.parse(r.stdout) as { error: { message: string } }).error.message).toMatch(advice());
      expect(r.stderr).not.toContain("starting 3 fresh node(s)");
    });

    it("prune still applies the retention to the copy, and reports the primary's failure by name (exit 1)", async () => {
      const r = await vrb(["prune", "--dry-run", "--json"], down);
      expect(r.code, r.stderr).toBe(1);
      const report = JSON.parse(r.stdout) as { ok: boolean; destinations: { destination: { name: string }; error?: { message: string }; kept?: { key: string }[] }[] };
      expect(report.ok).toBe(false);
      expect(report.destinations[0]).toMatchObject({ destination: { name: "primary" }, error: { message: expect.stringContaining("ECONNREFUSED") as unknown } });
      expect(report.destinations[1]!.destination.name).toBe("offsite");
      expect(report.destinations[1]!.kept!.map((k) => k.key)).toContain(copyKey);
    });
  });
});
