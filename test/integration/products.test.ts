import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseProduct, type Product } from "../../engine/index.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { packageRoot } from "../../engine/package-info.js";
import { PRODUCTS, rootClient, sharedEnvOf } from "../support/env.js";
import { productNames } from "../support/projects.js";

/**
 * The README's "Products and versions" table is what this suite ran, not what someone typed: each
 * row's version is the one the shared cluster of that product reports (sys/health), and the run
 * covers every product the table lists.
 */
function readmeTable(): Map<Product, string> {
  const readme = readFileSync(join(packageRoot(), "README.md"), "utf8");
  const section = readme.split("## Products and versions")[1]?.split("\n## ")[0];
  if (!section) throw new Error("README.md has no '## Products and versions' section");
  const rows = new Map<Product, string>();
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    // | product | version tested | how |
    const product = cells[1] ? parseProduct(cells[1].split(" (")[0]!.replace(/^HashiCorp /, "")) : undefined;
    if (product && /^\d+\.\d+\.\d+$/.test(cells[2] ?? "")) rows.set(product, cells[2]!);
  }
  return rows;
}

describe("README: products and versions", () => {
  it("lists exactly the products of a full run, each with the version its real cluster reports", async () => {
    const table = readmeTable();
    // A run of one product (VRB_TEST_PRODUCTS=openbao while iterating) checks that product's row only.
    const full = productNames(""); // every product the suite knows
    if (PRODUCTS.length === full.length) expect([...table.keys()].sort()).toEqual([...full].sort());
    else for (const product of PRODUCTS) expect(table.has(product), `README.md lists ${product}`).toBe(true);
    for (const product of PRODUCTS) {
      const client = rootClient(sharedEnvOf(product));
      try {
        const health = await nodeHealth(client);
        expect(health.product, "the product that answered").toBe(product);
        expect(health.version, `${product} version in README.md`).toBe(table.get(product));
      } finally {
        await client.close();
      }
    }
  });
});
