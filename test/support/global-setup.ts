import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { describeProduct, parseProduct, stderrProgress, type Product } from "../../engine/index.js";
import { s3ServerKindFromEnv } from "../../devenv/s3server.js";
import { productVersion } from "../../engine/throwaway/binaries.js";
import { localDown, localUp, type LocalEnvironment } from "../../devenv/environment.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** The shared OpenBao environment (= localEnvs.openbao). */
    localEnv: LocalEnvironment;
    /** One shared environment per product of the run (`products`). */
    localEnvs: Partial<Record<Product, LocalEnvironment>>;
    /** The products this run tests (test/support/env.ts PRODUCTS); a per-product project (vitest.config.ts) narrows it to its own. */
    products: Product[];
  }
}

const ALL: readonly Product[] = ["openbao", "vault"];

/**
 * The products of this run: both, each required (a missing binary fails the run with the command
 * that installs it; `npm test` builds Vault first). VRB_TEST_PRODUCTS=openbao narrows a run on
 * purpose, e.g. on a machine without Go; the log then says loudly which product is not tested.
 */
function productsOfRun(): Product[] {
  const named = process.env.VRB_TEST_PRODUCTS;
  if (!named) return [...ALL];
  const list = named.split(",").map((p) => {
    const product = parseProduct(p);
    if (!product) throw new Error(`VRB_TEST_PRODUCTS: '${p}' is not a product (openbao, vault)`);
    return product;
  });
  for (const p of ALL.filter((p) => !list.includes(p))) {
    process.stderr.write(`[vrb tests] ${describeProduct(p)} is NOT tested in this run (VRB_TEST_PRODUCTS=${named})\n`);
  }
  return ALL.filter((p) => list.includes(p));
}

/**
 * One real 3-node Raft cluster of each product of the run (OpenBao and HashiCorp Vault), each with
 * its own real S3 server, for the whole run, of the default production shape: Shamir seal, plain
 * HTTP on 127.0.0.1 and the product's default listener settings (OpenBao: the unauthenticated
 * generate-root endpoints are disabled; Vault 1.x: served). They start side by side. Tests that
 * destroy nodes start clusters of their own with the same engine code. If a server cannot start (a
 * binary is missing included), this throws and the whole run fails with the reason. It runs once per
 * run, in vitest's root project, whose provided values every project (vitest.config.ts) inherits.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const kind = s3ServerKindFromEnv();
  const started = Date.now();
  const products = productsOfRun();
  if (!products.includes("openbao")) throw new Error("the OpenBao cluster is part of every run: VRB_TEST_PRODUCTS must include openbao");
  const dirs: Partial<Record<Product, string>> = {};
  const results = await Promise.allSettled(
    products.map(async (product) => {
      const dir = (dirs[product] = mkdtempSync(join(tmpdir(), `vrb-test-env-${product}-`)));
      process.stderr.write(`[vrb tests] ${describeProduct(product, productVersion(product))}; S3 server: ${kind}; state in ${dir}\n`);
      return localUp({ product, dir, nodes: 3, s3: kind, progress: stderrProgress(`[vrb tests ${product}]`) });
    }),
  );
  const stopAll = async () => {
    await Promise.all(Object.values(dirs).map((d) => localDown(d)));
  };
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${products[i]}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`] : []));
  if (failed.length) {
    await stopAll();
    throw new Error(`the real test servers could not start:\n${failed.join("\n")}`);
  }
  const envs: Partial<Record<Product, LocalEnvironment>> = {};
  products.forEach((p, i) => (envs[p] = (results[i] as PromiseFulfilledResult<LocalEnvironment>).value));
  const names = products.map((p) => describeProduct(p, productVersion(p))).join(", ");
  process.stderr.write(`[vrb tests] shared clusters up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${names}\n`);
  project.provide("localEnv", envs.openbao!);
  project.provide("localEnvs", envs);
  project.provide("products", products);
  return stopAll;
}
