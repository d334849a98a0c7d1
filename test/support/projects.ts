import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { parseProduct, type Product } from "../../engine/vault/product.js";

/**
 * How vitest.config.ts splits the suite into projects, so that the pool can run one file's OpenBao
 * half and its HashiCorp Vault half side by side instead of one after the other in one worker (the
 * tail of a run used to wait on the longest two-product files).
 *
 * - one project per product of the run (`openbao`, `vault`) for the files whose every test is under
 *   `describe.each(PRODUCTS)`: each project's PRODUCTS is its one product;
 * - one project `all` for every other file (product-independent, or mixing per-product tests with
 *   tests that run once), with PRODUCTS = every product of the run, exactly as before the split.
 *
 * Each test thus still runs once per product it ran on before: the `tests:` counts do not change.
 * No test file is edited for this: a file is recognised by its source (perProductFile below).
 */

/**
 * The products of a run as VRB_TEST_PRODUCTS names them, read as test/support/global-setup.ts reads
 * them (which also fails the run on a name that is no product).
 */
export function productNames(named = process.env.VRB_TEST_PRODUCTS): Product[] {
  const all: Product[] = ["openbao", "vault"];
  if (!named) return all;
  const list = named.split(",").map(parseProduct);
  return all.filter((p) => list.includes(p));
}

/**
 * Support helpers whose one call at the top of a test file registers one `describe.each(PRODUCTS)`
 * and nothing else (test/support/store-cli-suite.ts). A new helper of that kind belongs here, or
 * its files run in the `all` project (correct, only not split).
 */
const PER_PRODUCT_SUITES = ["storeCliSuite"];

/** A call at column 0 that registers tests or suites (prettier keeps top-level statements at column 0). */
const TOP_LEVEL_REGISTRATION = /^(?:describe|suite|it|test|bench)\b[^\n]*/gm;

/**
 * Whether a test file runs each of its tests once per product and nothing once: its top-level
 * registrations are all `describe.each(PRODUCTS)` (or one of PER_PRODUCT_SUITES), and PRODUCTS is
 * used nowhere else (products.test.ts compares the whole list; inventory.test.ts reads PRODUCTS[0]).
 * When unsure it answers false: such a file runs in the `all` project on every product in one go.
 */
export function perProductFile(source: string): boolean {
  const code = source.replace(/^import\s[\s\S]*?\sfrom\s+["'][^"']+["'];?\s*$/gm, "");
  const registrations = code.match(TOP_LEVEL_REGISTRATION) ?? [];
  const suites = PER_PRODUCT_SUITES.filter((name) => new RegExp(`^${name}\\(`, "m").test(code));
  if (registrations.some((line) => !line.startsWith("describe.each(PRODUCTS)("))) return false;
  if (registrations.length + suites.length === 0) return false;
  const otherUses = code.split("\n").filter((line) => /\bPRODUCTS\b/.test(line) && !line.startsWith("describe.each(PRODUCTS)("));
  return otherUses.length === 0;
}

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return testFiles(path);
    return e.isFile() && e.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** The test files under test/ (paths relative to `root`, as vitest's include takes them) that run per product. */
export function perProductFiles(root: string): string[] {
  return testFiles(join(root, "test"))
    .filter((path) => perProductFile(readFileSync(path, "utf8")))
    .map((path) => relative(root, path).split("\\").join("/"))
    .sort();
}
