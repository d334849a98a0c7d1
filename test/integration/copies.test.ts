import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, type Product } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { kvGet } from "../../engine/vault/kv-v2.js";
import { startAzurite, stopAzurite, type LocalAzurite } from "../../devenv/azurite.js";
import { freePort } from "../../engine/throwaway/ports.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { PRODUCTS, cliEnv, putCanary, runVrb, s3For, s3StoreOn, sharedEnvOf, tempDir, writeKeysFile } from "../support/env.js";

// Issue 21, off-site copies: the real `vrb` CLI backs up once to the shared S3 bucket with a copy on
// Azurite and one in a directory, all in the same pass. The tests read what each store holds with
// that store's own client, rebuild a fresh node from the Azure copy with S3 unreachable, and make
// a copy fail before anything (missing container) and mid-pass (a proxy refusing its writes).
let az: LocalAzurite;
let service: BlobServiceClient;

beforeAll(async () => {
  az = await startAzurite(tempDir("azurite-copies"));
  service = BlobServiceClient.fromConnectionString(az.connectionString);
});

afterAll(async () => {
  if (az) await stopAzurite(az);
});

interface Outcome {
  name: string;
  ok: boolean;
  key?: string;
  url?: string;
  bytes?: number;
  sha256?: string;
  stage?: string;
  error?: string;
}
interface Report {
  ok: boolean;
  key: string;
  sha256: string;
  destinations: Outcome[];
  error?: { stage?: string; message: string };
}

describe.each(PRODUCTS)("a backup with off-site copies (real %s, S3 + Azurite + a directory)", (product: Product) => {
  const shared = sharedEnvOf(product);
  const run = `${product}-${randomBytes(3).toString("hex")}`;
  const cluster = `copies-${run}`;
  const prefix = `copies-${run}/`;
  const container = `offsite-${run}`;
  const dir = tempDir("copies");
  const nasDir = tempDir("copies-nas");
  const keysFile = join(dir, "keys.json");
  const canary = { path: `copies-canary-${run}`, value: randomBytes(12).toString("hex") };
  const s3 = s3For(shared);
  const primary = s3StoreOn(s3, shared.bucket!, "");
  let blobs: ContainerClient;
  let targets: LocalNode[] = [];
  let first: Report;

  /** A policy file: the shared bucket as primary, then `copies` (YAML flow mappings). */
  function policy(name: string, copies: string[], onCopyFailure: "fail" | "warn" = "fail"): string {
    const path = join(dir, `${name}.yaml`);
    writeFileSync(
      path,
      [
        "cluster:",
        `  name: ${cluster}`,
        `  nodes: [${shared.nodes.map((n) => n.apiAddr).join(", ")}]`,
        `destination: { bucket: ${shared.bucket}, prefix: ${prefix} }`,
        "copies:",
        ...copies.map((c) => `  - ${c}`),
        `onCopyFailure: ${onCopyFailure}`,
        "",
      ].join("\n"),
    );
    return path;
  }
  const azureCopy = (endpoint = az.endpoint, name = "offsite", c = container) =>
    `{ name: ${name}, type: azure, accountName: ${az.accountName}, container: ${c}, prefix: vault/, endpoint: "${endpoint}" }`;
  const fileCopy = `{ name: nas, type: file, path: "${nasDir}", prefix: vault/ }`;
  const env = (extra: Record<string, string> = {}) => cliEnv(shared, { AZURE_STORAGE_CONNECTION_STRING: az.connectionString, ...extra });
  const secrets = () => [az.accountKey, shared.keys!.rootToken, shared.s3!.secretAccessKey, ...shared.keys!.unsealKeysB64];
  const leaked = (text: string) => secrets().filter((s) => text.includes(s)).length;
  const statusRecord = async () => JSON.parse((await primary.readText(`${prefix}${cluster}/vrb-status.json`))!.text) as Record<string, unknown>;

  beforeAll(async () => {
    blobs = service.getContainerClient(container);
    await blobs.create();
    writeKeysFile(shared, keysFile);
    await putCanary(shared, canary);
  });

  afterAll(async () => {
    await Promise.all(targets.map((n) => stopNode(n)));
    s3.destroy();
  });

  it("one backup stores the same bytes in S3, Azure and the directory, each with its own manifest and the same SHA-256", async () => {
    const r = await runVrb(["backup", "--json", "--policy", policy("all", [azureCopy(), fileCopy])], env());
    expect(r.code, r.stderr).toBe(0);
    expect(leaked(r.stdout + r.stderr)).toBe(0);
    first = JSON.parse(r.stdout) as Report;
    expect(first.destinations.map((d) => [d.name, d.ok])).toEqual([
      ["primary", true],
      ["offsite", true],
      ["nas", true],
    ]);
    for (const d of first.destinations) expect(d.sha256).toBe(first.sha256);

    const offsite = first.destinations[1]!.key!;
    const nas = first.destinations[2]!.key!;
    const fromS3 = Buffer.concat((await (await primary.openRead(first.key)).body.toArray()) as Buffer[]);
    const fromAzure = await blobs.getBlockBlobClient(offsite).downloadToBuffer();
    const fromDir = readFileSync(join(nasDir, nas));
    expect(fromAzure.equals(fromS3)).toBe(true);
    expect(fromDir.equals(fromS3)).toBe(true);

    const manifests = [
      JSON.parse((await primary.readText(`${first.key}.manifest.json`))!.text) as { sha256: string; key: string },
      JSON.parse((await blobs.getBlockBlobClient(`${offsite}.manifest.json`).downloadToBuffer()).toString()) as { sha256: string; key: string },
      JSON.parse(readFileSync(join(nasDir, `${nas}.manifest.json`), "utf8")) as { sha256: string; key: string },
    ];
    expect(manifests.map((m) => m.sha256)).toEqual([first.sha256, first.sha256, first.sha256]);
    expect(manifests.map((m) => m.key)).toEqual([first.key, offsite, nas]);

    // The primary's status record lists each copy's outcome; each copy's own store records the run.
    expect(await statusRecord()).toMatchObject({ copies: { offsite: { lastAttemptOk: true, key: offsite }, nas: { lastAttemptOk: true, key: nas } } });
    const azureRecord = JSON.parse((await blobs.getBlockBlobClient(`vault/${cluster}/vrb-status.json`).downloadToBuffer()).toString()) as Record<string, unknown>;
    expect(azureRecord).toMatchObject({ newestGood: { key: offsite }, operations: { backup: { lastAttemptOk: true } } });
  });

  it("with the S3 endpoint closed, vrb restore latest --destination offsite rebuilds a fresh node from the Azure copy", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const pol = join(dir, "all.yaml");
    targets = await startFreshNodes(tempDir("copies-target"), 1, { idPrefix: `cp-${product}`, shape: { product } });
    const r = await runVrb(
      ["restore", "latest", "--destination", "offsite", "--nodes", targets[0]!.apiAddr, "--unseal-keys-file", keysFile, "--json", "--policy", pol],
      env({ AWS_ENDPOINT_URL_S3: closed }),
      { timeoutMs: 240_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(leaked(r.stdout + r.stderr)).toBe(0);
    expect(r.stdout).toContain(first.destinations[1]!.key!);
    const restored = new VaultClient({ addr: targets[0]!.apiAddr, token: shared.keys!.rootToken });
    try {
      expect(await kvGet(restored, "secret", canary.path)).toEqual({ value: canary.value });
    } finally {
      await restored.close();
    }
  });

  it("a copy whose container does not exist is exit 2 naming copies.0.container, before anything is written", async () => {
    const before = (await primary.list(`${prefix}${cluster}/`)).map((o) => o.key);
    const r = await runVrb(["backup", "--policy", policy("missing", [azureCopy(az.endpoint, "offsite", `nowhere-${run}`)])], env());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("copies.0.container");
    expect(r.stderr).not.toMatch(/raft index/);
    expect((await primary.list(`${prefix}${cluster}/`)).map((o) => o.key)).toEqual(before);
  });

  describe("a copy that fails mid-pass (every write to Azure refused by a proxy)", () => {
    let proxy: FaultProxy;
    beforeAll(async () => {
      proxy = await new FaultProxy(new URL(az.endpoint).origin).start();
      // Reads (the container check) pass; every write of the copy is refused, as a store that turns read-only would.
      proxy.rules = [{ match: (req) => req.method === "PUT", share: 1, fault: { kind: "s3-error", status: 403, code: "AuthorizationFailure" } }];
    });
    afterAll(async () => {
      await proxy?.stop();
    });
    const proxied = () => azureCopy(`${proxy.url}/${az.accountName}`);

    it("with onCopyFailure warn: the backup succeeds, the report and the status record name the failed copy, the other copy is whole", async () => {
      const pol = policy("warn", [proxied(), fileCopy], "warn");
      const r = await runVrb(["backup", "--json", "--policy", pol], env());
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.destinations.map((d) => [d.name, d.ok])).toEqual([
        ["primary", true],
        ["offsite", false],
        ["nas", true],
      ]);
      expect(report.destinations[1]!.stage).toBe("copy offsite");
      expect(report.destinations[2]!.sha256).toBe(report.sha256);
      expect(r.stderr).toContain("copy 'offsite' failed");
      expect(await statusRecord()).toMatchObject({
        operations: { backup: { lastAttemptOk: true } },
        copies: { offsite: { lastAttemptOk: false, lastError: { stage: "copy offsite" } }, nas: { lastAttemptOk: true } },
      });
      // Nothing of this run is left in the copy's container.
      const left: string[] = [];
      for await (const b of blobs.listBlobsFlat({ prefix: `vault/${cluster}/` })) left.push(b.name);
      expect(left.filter((k) => k.includes(String(report.key.split("/").pop())))).toEqual([]);
      expect(existsSync(join(nasDir, report.destinations[2]!.key!))).toBe(true);
      // The metric the VrbCopyFailed alert watches.
      const prom = await runVrb(["status", "--prometheus", "--policy", pol], env());
      expect(prom.code, prom.stderr).toBe(0);
      const failing = prom.stdout.split("\n").filter((l) => l.startsWith("vrb_copy_consecutive_failures{") && l.includes('destination="offsite"'));
      expect(failing.map((l) => l.split(" ").pop())).toEqual(["1"]);
    });

    it("with onCopyFailure fail: exit 1 at stage 'copy offsite', and the primary's snapshot is still good", async () => {
      const pol = policy("fail", [proxied()], "fail");
      const r = await runVrb(["backup", "--json", "--policy", pol], env());
      expect(r.code, r.stdout + r.stderr).toBe(1);
      const report = JSON.parse(r.stdout) as Report;
      expect(report.ok).toBe(false);
      expect(report.error?.stage).toBe("copy offsite");
      expect(r.stderr).toContain("[stage: copy offsite]");
      const verify = await runVrb(["verify", report.key, "--policy", pol], env());
      expect(verify.code, verify.stderr).toBe(0);
      expect(await statusRecord()).toMatchObject({ operations: { backup: { lastAttemptOk: false, lastError: { stage: "copy offsite" } } }, newestGood: { key: report.key } });
      // The directory copy of the earlier runs stays untouched by this one.
      expect(readdirSync(nasDir).length).toBeGreaterThan(0);
    });
  });
});
