import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient, type DrillReport, type Product } from "../../engine/index.js";
import { type LocalEnvironment } from "../../devenv/environment.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { kvGet, kvPut } from "../../engine/vault/kv-v2.js";
import { PRODUCTS, cliEnv, putCanary, rootClient, runVrb, sharedEnvOf, tempDir, writeKeysFile } from "./env.js";
import { frozen } from "./processes.js";

/** One store's side of the CLI suite, for one product's run; read only once the store's server is up. */
export interface StoreUnderTest {
  /** The policy's `destination:` flow mapping. */
  destination(): string;
  /** Variables the CLI needs for this store, beside the cluster's. */
  env(): Record<string, string>;
  /** The store's own secrets, which no output may show. */
  secrets(): string[];
  /** The store URL `vrb verify` prints for a key. */
  urlOf(key: string): string;
  /** Makes the bucket or container (before anything runs). */
  create(): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Overwrites the object with the same bytes but one, in the middle: only the SHA-256 can tell. */
  damage(key: string): Promise<void>;
  /** The store server's process, stopped (SIGSTOP) to make a store that accepts connections and never answers. */
  pid(): number;
}

export interface StoreCliSpec {
  /** The describe title, with %s for the product. */
  title: string;
  /** Prefix of the cluster name and of the fresh node's id (`az`, `gcs`). */
  short: string;
  /** Prefix of the canary secret's path. */
  canary: string;
  /** Name of the temporary folders (`store-azure`). */
  dirName: string;
  /** What the store calls where objects go, and one object, as the test names say them. */
  place: "container" | "bucket";
  object: "a blob" | "an object";
  /** The store for one product's run (`run` is unique to it). */
  store(run: string): StoreUnderTest;
}

/**
 * Issue 21: the real `vrb` CLI with a policy whose destination is one store, on each product's shared
 * cluster: backup twice, list, verify, a rebuild into a fresh node, a damaged object that verify
 * refuses with exit 3, prune and status. The CLI runs with no S3 variable set, so nothing can
 * silently go to the S3 server.
 */
export function storeCliSuite(spec: StoreCliSpec): void {
  describe.each(PRODUCTS)(spec.title, (product: Product) => {
    const shared = sharedEnvOf(product);
    const run = `${product}-${randomBytes(3).toString("hex")}`;
    const cluster = `${spec.short}-${run}`;
    const canary = { path: `${spec.canary}-${run}`, value: randomBytes(12).toString("hex") };
    const dir = tempDir(spec.dirName);
    const policy = join(dir, "policy.yaml");
    const keysFile = join(dir, "keys.json");
    const store = spec.store(run);
    let targets: LocalNode[] = [];
    const keys: string[] = [];

    const vrb = (args: string[], opts?: { timeoutMs?: number }) => runVrb([...args, "--policy", policy], storeEnv(shared, store), opts);
    const leaked = (text: string) => [...store.secrets(), shared.keys!.rootToken, ...shared.keys!.unsealKeysB64].filter((s) => text.includes(s)).map((s) => `${s.slice(0, 4)}...`);

    beforeAll(async () => {
      await store.create();
      writeFileSync(
        policy,
        [
          "cluster:",
          `  name: ${cluster}`,
          `  nodes: [${shared.nodes.map((n) => n.apiAddr).join(", ")}]`,
          `destination: ${store.destination()}`,
          "retention: { keepLast: 1 }",
          "",
        ].join("\n"),
      );
      writeKeysFile(shared, keysFile);
      await putCanary(shared, canary);
    });

    afterAll(async () => {
      await Promise.all(targets.map((n) => stopNode(n)));
    });

    it(`backs up twice into the ${spec.place}, lists both as good and verifies the newest`, async () => {
      for (let i = 0; i < 2; i++) {
        const r = await vrb(["backup", "--json"]);
        expect(r.code, r.stderr).toBe(0);
        expect(leaked(r.stdout + r.stderr)).toEqual([]);
        keys.push((JSON.parse(r.stdout) as { key: string }).key);
        // A new raft index for the second backup's key.
        const root = rootClient(shared);
        await kvPut(root, "secret", `${canary.path}-tick`, { i }).finally(() => root.close());
      }
      expect(keys[1]).not.toBe(keys[0]);
      for (const key of keys) {
        expect(key.startsWith(`vault/${cluster}/`)).toBe(true);
        expect(await store.exists(key)).toBe(true);
        expect(await store.exists(`${key}.manifest.json`)).toBe(true);
      }

      const list = await vrb(["list", "--json"]);
      expect(list.code, list.stderr).toBe(0);
      const listed = JSON.parse(list.stdout) as unknown;
      for (const key of keys) {
        expect(list.stdout).toContain(key);
        expect(JSON.stringify(listed)).toContain(key);
      }
      const text = await vrb(["list"]);
      expect(text.code, text.stderr).toBe(0);
      const lines = text.stdout.split("\n");
      for (const key of keys) {
        expect(lines.find((l) => l.endsWith(key))).toMatch(/^good /);
        expect(lines.some((l) => l.startsWith("good ") && l.endsWith(` ${key}`))).toBe(true);
      }

      const verify = await vrb(["verify", "latest"]);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toContain(`OK ${store.urlOf(keys[1]!)}`);
    });

    it(`rebuilds a fresh node from the newest snapshot in the ${spec.place}: the canary reads back`, async () => {
      targets = await startFreshNodes(tempDir(`${spec.dirName}-target`), 1, { idPrefix: `${spec.short}-${product}`, shape: { product } });
      const r = await vrb(["restore", "latest", "--nodes", targets[0]!.apiAddr, "--unseal-keys-file", keysFile, "--json"], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
      expect((JSON.parse(r.stdout) as { ok: boolean }).ok).toBe(true);
      const restored = new VaultClient({ addr: targets[0]!.apiAddr, token: shared.keys!.rootToken });
      try {
        expect(await kvGet(restored, "secret", canary.path)).toEqual({ value: canary.value });
      } finally {
        await restored.close();
      }
    });

    it(`drills the newest snapshot from the ${spec.place} into a throwaway node of its product: canary found, RTO reported, torn down`, async () => {
      const r = await vrb(["drill", "latest", "--nodes", "1", "--unseal-keys-file", keysFile, "--canary", `secret/data/${canary.path}`, "--json"], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(leaked(r.stdout + r.stderr)).toEqual([]);
      const report = JSON.parse(r.stdout) as DrillReport;
      expect(report.ok).toBe(true);
      expect(report.snapshot.key).toBe(keys[1]);
      expect(report.throwaway.product).toBe(product);
      expect(report.canaries).toEqual([{ path: `secret/data/${canary.path}`, ok: true }]);
      expect(report.rtoMs).toBeGreaterThan(0);
      expect(report.teardown.stopped).toBe(1);
    });

    it(`${spec.object} overwritten with damaged bytes fails verify with exit 3; prune keeps the newest; status reports the last success`, async () => {
      const [older, newest] = keys as [string, string];
      await store.damage(older);

      const verify = await vrb(["verify", older]);
      expect(verify.code, verify.stdout + verify.stderr).toBe(3);
      expect(verify.stderr).toContain(older);

      const prune = await vrb(["prune", "--json"]);
      expect(prune.code, prune.stderr).toBe(0);
      const report = JSON.parse(prune.stdout) as { deleted: { key: string }[]; kept: { key: string }[] };
      expect(report.kept.map((k) => k.key)).toEqual([newest]);
      expect(report.deleted.map((k) => k.key)).toEqual([older]);
      expect(await store.exists(older)).toBe(false);
      expect(await store.exists(`${older}.manifest.json`)).toBe(false);
      expect(await store.exists(newest)).toBe(true);

      const status = await vrb(["status", "--json"]);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ newestGood: { key: newest } });
      const check = await vrb(["status", "--check"]);
      expect(check.code, check.stdout + check.stderr).toBe(0);
    });

    it(`a ${spec.place} that stops answering: list, status and restore latest end with exit 1 naming it, and the restore changed nothing`, async () => {
      // The destination's timeoutSeconds (default 60) at 3, so that the commands end in seconds.
      const hung = join(dir, "hung.yaml");
      writeFileSync(hung, readFileSync(policy, "utf8").replace(/ }\n/, ", timeoutSeconds: 3 }\n"));
      const [target] = await startFreshNodes(tempDir(`${spec.dirName}-hung`), 1, { idPrefix: `${spec.short}h-${product}`, shape: { product } });
      targets.push(target!);
      const hungVrb = (args: string[]) => runVrb([...args, "--policy", hung], storeEnv(shared, store), { timeoutMs: 120_000 });
      const results = await frozen(store.pid(), () =>
        Promise.all([hungVrb(["list"]), hungVrb(["status"]), hungVrb(["restore", "latest", "--nodes", target!.apiAddr, "--unseal-keys-file", keysFile])]),
      );
      const container = store
        .urlOf("")
        .replace(/\/$/, "")
        .replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      for (const r of results) {
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toMatch(new RegExp(`${container}/? did not answer: no answer within 3s to `));
      }
      expect(results[2].stderr).toContain("nothing was changed on any node");
      expect((await fetch(`${target!.apiAddr}/v1/sys/health`)).status).toBe(501);
    });
  });
}

/** The CLI's environment: the shared cluster's address and token, the store's variables, and no S3 at all. */
function storeEnv(shared: LocalEnvironment, store: StoreUnderTest): Record<string, string> {
  const e = cliEnv(shared, store.env());
  for (const k of Object.keys(e)) if (k.startsWith("AWS_") || k === "VRB_BUCKET") delete e[k];
  return e;
}

/** Flips one byte in the middle of a body, keeping its size. */
export function damaged(body: Buffer): Buffer {
  body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
  return body;
}
