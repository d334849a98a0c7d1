import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeProduct, parseProduct, productOfManifest, type Product } from "../../engine/index.js";
import { generateRootAdvice } from "../../engine/restore/root-token.js";
import { compareVersions, detectProduct, guessProduct, productProfile } from "../../engine/vault/product.js";

type Recorded = Record<"uninitialized" | "sealed" | "active" | "standby", { health: { status: number; body: unknown }; sealStatus: { status: number; body: unknown } }> & {
  generateRootAttempt: { status: number };
};

/**
 * Responses RECORDED from the real servers by test/unit/products/record.mjs (one node in each state,
 * ids, names and times scrubbed): OpenBao 2.7.2 from PyPI, HashiCorp Vault 1.21.1 built from its Go
 * module (tools/go/vault).
 */
const file = (product: Product) => join(import.meta.dirname, "products", `${product}.json`);
const recorded = (product: Product): Recorded => JSON.parse(readFileSync(file(product), "utf8")) as Recorded;

describe("product detection from real sys/health and sys/seal-status answers", () => {
  for (const product of (["openbao", "vault"] as const).filter((p) => existsSync(file(p)))) {
    const r = recorded(product);
    for (const state of ["uninitialized", "sealed", "active", "standby"] as const) {
      it(`${product}, ${state}: both endpoints name the product`, () => {
        expect(detectProduct(r[state].health.body)).toBe(product);
        expect(detectProduct(r[state].sealStatus.body)).toBe(product);
      });
    }
    it(`${product}: the profile's generate-root default is what the real listener did after init`, () => {
      // OpenBao 2.7.2 answers 405 (disable_unauthed_generate_root_endpoints defaults to true); Vault 1.21.1 serves it.
      expect(r.generateRootAttempt.status === 200).toBe(productProfile(product).generateRootByDefault);
    });
  }

  it("Vault's health body always carries `enterprise` (http/sys_health.go HealthResponse, Vault 1.21.x source), OpenBao's never", () => {
    // The fields of Vault 1.21.4's HealthResponse for an uninitialised node, as its handler fills them.
    const vaultUninit = {
      initialized: false,
      sealed: true,
      standby: true,
      performance_standby: false,
      version: "1.21.4",
      enterprise: false,
      echo_duration_ms: 0,
      clock_skew_ms: 0,
    };
    expect(detectProduct(vaultUninit)).toBe("vault");
    expect(detectProduct({ type: "shamir", initialized: true, sealed: false, version: "1.21.4", build_date: "2026-03-04T00:00:00Z" })).toBe("vault");
  });

  it("nothing to go by: undefined", () => {
    expect(detectProduct(undefined)).toBeUndefined();
    expect(detectProduct({ errors: ["x"] })).toBeUndefined();
  });
});

describe("the product of manifests older than the field", () => {
  it("guesses Vault for 0.x/1.x and Enterprise versions, OpenBao for 2.x and unknown", () => {
    expect(guessProduct("1.21.4")).toBe("vault");
    expect(guessProduct("1.15.2+ent")).toBe("vault");
    expect(guessProduct("2.7.2")).toBe("openbao");
    expect(guessProduct("unknown")).toBe("openbao");
    expect(guessProduct(undefined)).toBe("openbao");
  });

  it("a recorded product wins over the guess", () => {
    expect(productOfManifest({ version: "2.0.0", product: "vault" })).toBe("vault");
    expect(productOfManifest({ version: "1.21.4" })).toBe("vault");
  });

  it("names, parsing and version order", () => {
    expect(describeProduct("vault", "1.21.4")).toBe("HashiCorp Vault 1.21.4");
    expect(describeProduct("openbao", "unknown")).toBe("OpenBao");
    expect(parseProduct("Vault")).toBe("vault");
    expect(parseProduct("bao")).toBe("openbao");
    expect(parseProduct("consul")).toBeUndefined();
    expect(compareVersions("2.0.0", "1.21.4")).toBe(1);
    expect(compareVersions("1.21.4", "1.21.4")).toBe(0);
    expect(compareVersions("1.9.0", "1.21.4")).toBe(-1);
  });
});

describe("generate-root refusal advice names the setting of the targets' product", () => {
  it("OpenBao: its listener key; Vault: its own words; unknown: both, never one product's key alone", () => {
    const bao = generateRootAdvice("openbao");
    expect(bao.setting).toContain("disable_unauthed_generate_root_endpoints = false");
    expect(bao.why).toMatch(/OpenBao turns it off by default/);
    const vault = generateRootAdvice("vault");
    expect(vault.setting).toContain(productProfile("vault").generateRootSetting);
    expect(vault.setting).not.toContain("disable_unauthed_generate_root_endpoints");
    expect(vault.why).toMatch(/HashiCorp Vault serves it by default/);
    const unknown = generateRootAdvice(undefined);
    expect(unknown.setting).toContain("OpenBao: disable_unauthed_generate_root_endpoints = false");
    expect(unknown.setting).toContain(`HashiCorp Vault: ${productProfile("vault").generateRootSetting}`);
  });
});
