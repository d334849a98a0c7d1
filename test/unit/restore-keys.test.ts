import { describe, expect, it } from "vitest";
import { ConfigError, compareVersions, decodeRootToken, parseUnsealKeys, redact } from "../../engine/index.js";

const k1 = Buffer.alloc(33, 1).toString("base64");
const k2 = Buffer.alloc(33, 2).toString("base64");

describe("unseal keys file", () => {
  it("reads operator-init JSON and one-key-per-line files, and registers every key as a secret", () => {
    expect(parseUnsealKeys(JSON.stringify({ unseal_keys_b64: [k1, k2], unseal_keys_hex: ["aa"], root_token: "x" }), "f.json")).toEqual([k1, k2]);
    expect(parseUnsealKeys(`# keys\n${k1}\n\n  ${k2}  \n`, "keys.txt")).toEqual([k1, k2]);
    expect(redact(`key ${k1}`)).toBe("key [REDACTED]");
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

describe("restore helpers", () => {
  it("decodes a generate-root encoded token (base64 of token XOR otp)", () => {
    const token = "s.AbCdEfGhIjKlMnOpQrStUvWx";
    const otp = "0123456789abcdefghijklmnop".slice(0, token.length);
    const encoded = Buffer.from([...token].map((c, i) => c.charCodeAt(0) ^ otp.charCodeAt(i))).toString("base64").replace(/=+$/, "");
    expect(decodeRootToken(encoded, otp)).toBe(token);
  });

  it("compares Vault/OpenBao versions", () => {
    expect(compareVersions("2.7.2", "2.7.2")).toBe(0);
    expect(compareVersions("2.6.9", "2.7.0")).toBeLessThan(0);
    expect(compareVersions("v1.15.4+ent", "1.14.0")).toBeGreaterThan(0);
    expect(compareVersions(undefined, "2.7.2")).toBe(0);
  });
});
