import { describe, expect, it } from "vitest";
import { ConfigError, redact } from "../../engine/index.js";
import { compareVersions } from "../../engine/vault/product.js";
import { planSeal } from "../../engine/restore/seal.js";
import { parseKeysFile, parseUnsealKeys } from "../../engine/restore/keys.js";
import { decodeRootToken } from "../../engine/restore/root-token.js";

const k1 = Buffer.alloc(33, 1).toString("base64");
const k2 = Buffer.alloc(33, 2).toString("base64");

describe("unseal keys file", () => {
  it("reads operator-init JSON and one-key-per-line files, and registers every key as a secret", () => {
    expect(parseUnsealKeys(JSON.stringify({ unseal_keys_b64: [k1, k2], unseal_keys_hex: ["aa"], root_token: "x" }), "f.json")).toEqual([k1, k2]);
    expect(parseUnsealKeys(`# keys\n${k1}\n\n  ${k2}  \n`, "keys.txt")).toEqual([k1, k2]);
    expect(redact(`key ${k1}`)).toBe("key [REDACTED]");
  });

  it("reads an auto-unseal cluster's init JSON as recovery keys, and keeps the root token (registered as a secret) to try", () => {
    const token = "s.RootTokenOfTheOriginalCluster1";
    const init = { unseal_keys_b64: [], unseal_threshold: 0, recovery_keys_b64: [k1, k2], recovery_keys_threshold: 2, root_token: token };
    expect(parseKeysFile(JSON.stringify(init), "init.json")).toEqual({ kind: "recovery", keys: [k1, k2], threshold: 2, rootToken: token });
    expect(redact(`token ${token}`)).toBe("token [REDACTED]");
    expect(parseKeysFile(JSON.stringify({ unseal_keys_b64: [k1], recovery_keys_b64: [] }), "f").kind).toBe("unseal");
    // One key per line says nothing of its kind: the flag that named the file does.
    expect(parseKeysFile(`${k1}\n`, "r.txt", "recovery").kind).toBe("recovery");
    expect(parseKeysFile(`${k1}\n`, "r.txt").kind).toBeUndefined();
  });

  it("refuses a keys file with fewer keys than the threshold it states", () => {
    expect(() => parseKeysFile(JSON.stringify({ recovery_keys_b64: [k1], recovery_keys_threshold: 3 }), "init.json")).toThrow(/holds 1 key\(s\) but the cluster needs 3/);
  });

  it("refuses empty files, JSON without unseal_keys_b64, hex keys and duplicates, naming the file but never the key", () => {
    const bad = ["", "{}", `{"unseal_keys_b64": "x"}`, "zz!!not-base64", `${k1}\n${k1}`, "{not json"];
    for (const text of bad) {
      let err: unknown;
      try {
        parseUnsealKeys(text, "keys.txt");
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain("keys.txt");
      expect((err as ConfigError).message).not.toContain(k1);
      expect((err as ConfigError).exitCode).toBe(2);
    }
  });
});

describe("seal plan (decided before any node changes)", () => {
  const shamir = { type: "shamir", recoverySeal: false };
  const transit = { type: "transit", recoverySeal: true };
  const targets = (...seals: (typeof shamir)[]) => seals.map((seal, i) => ({ addr: `https://n${i + 1}:8200`, seal }));
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).exitCode).toBe(2);
      return (err as Error).message;
    }
    throw new Error("expected a refusal");
  };

  it("follows the targets' seal when it matches the snapshot's", () => {
    expect(planSeal(targets(shamir, shamir), shamir, { kind: "unseal", keys: [k1] })).toEqual({ kind: "shamir", type: "shamir" });
    expect(planSeal(targets(transit, transit, transit), transit, undefined)).toEqual({ kind: "auto", type: "transit" });
    // Older manifests do not record the seal: the keys file's kind decides, or the targets alone.
    expect(planSeal(targets(transit), undefined, { kind: "recovery", keys: [k1] })).toEqual({ kind: "auto", type: "transit" });
  });

  it("refuses a restore across seal kinds or types, mixed targets, and keys of the other kind, saying what to do", () => {
    expect(refusal(() => planSeal(targets(transit, transit), shamir, undefined))).toMatch(
      /Shamir seal, but the target nodes use the 'transit' auto-unseal seal.*seal migration.*Nothing was changed/,
    );
    expect(refusal(() => planSeal(targets(shamir), transit, undefined))).toMatch(/'transit' auto-unseal seal, but the target nodes use a Shamir seal/);
    expect(refusal(() => planSeal(targets(transit), { type: "awskms", recoverySeal: true }, undefined))).toMatch(/'awskms'.*'transit'/);
    expect(refusal(() => planSeal(targets(shamir, transit), undefined, undefined))).toMatch(/different seals \(https:\/\/n1:8200: shamir, https:\/\/n2:8200: transit\)/);
    expect(refusal(() => planSeal(targets(transit), undefined, { kind: "unseal", keys: [k1] }))).toMatch(/holds unseal keys/);
    expect(refusal(() => planSeal(targets(shamir), shamir, { kind: "recovery", keys: [k1] }))).toMatch(/holds recovery keys.*give its unseal keys/);
  });
});

describe("restore helpers", () => {
  it("decodes a generate-root encoded token (base64 of token XOR otp)", () => {
    const token = "s.AbCdEfGhIjKlMnOpQrStUvWx";
    const otp = "0123456789abcdefghijklmnop".slice(0, token.length);
    const encoded = Buffer.from([...token].map((c, i) => c.charCodeAt(0) ^ otp.charCodeAt(i)))
      .toString("base64")
      .replace(/=+$/, "");
    expect(decodeRootToken(encoded, otp)).toBe(token);
  });

  it("compares Vault/OpenBao versions", () => {
    expect(compareVersions("2.7.2", "2.7.2")).toBe(0);
    expect(compareVersions("2.6.9", "2.7.0")).toBeLessThan(0);
    expect(compareVersions("v1.15.4+ent", "1.14.0")).toBeGreaterThan(0);
    expect(compareVersions(undefined, "2.7.2")).toBe(0);
  });
});
