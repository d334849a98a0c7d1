import { describe, expect, it } from "vitest";
import { ConfigError } from "../../engine/index.js";
import { checkRecoverInput, resolveTargets } from "../../engine/recover/secret-targets.js";
import { containsAll, sameData } from "../../engine/recover/values.js";

const mounts = {
  "secret/": { type: "kv", options: { version: "2" } },
  "secret/team-a/": { type: "kv", options: { version: "1" } },
  "legacy/": { type: "kv", options: null },
  "pki/": { type: "pki" },
  "sys/": { type: "system" },
};

describe("vrb recover: which mount and KV version a --path names", () => {
  it("takes the longest mount that holds the path, and its KV version", () => {
    expect(resolveTargets(["secret/app/db", "secret/team-a/x", "legacy/billing/token", "secret/app/", "secret"], mounts)).toEqual([
      { spec: "secret/app/db", mount: "secret", kind: "kv2", rest: "app/db" },
      { spec: "secret/team-a/x", mount: "secret/team-a", kind: "kv1", rest: "x" },
      { spec: "legacy/billing/token", mount: "legacy", kind: "kv1", rest: "billing/token" },
      { spec: "secret/app/", mount: "secret", kind: "kv2", rest: "app/" },
      { spec: "secret", mount: "secret", kind: "kv2", rest: "" },
    ]);
  });

  it("refuses a path outside any mount or in a non-KV engine, naming the flag", () => {
    expect(() => resolveTargets(["nope/x"], mounts)).toThrow(/--path nope\/x: no mount of the snapshot holds it/);
    expect(() => resolveTargets(["pki/issuer/x"], mounts)).toThrow(/'pki' engine; only KV/);
    expect(() => resolveTargets(["pki/issuer/x"], mounts)).toThrow(ConfigError);
  });

  it("checks the flags before anything starts", () => {
    expect(() => checkRecoverInput([], [])).toThrow(/nothing to recover/);
    expect(() => checkRecoverInput(["/secret/x"], [])).toThrow(/--path '\/secret\/x'/);
    expect(() => checkRecoverInput(["secret/../x"], [])).toThrow(ConfigError);
    expect(() => checkRecoverInput([], ["root"])).toThrow(/root policy cannot be written/);
    expect(() => checkRecoverInput(["secret/app/db", "secret/app/"], ["app-reader"])).not.toThrow();
  });

  it("compares values regardless of key order, and custom metadata as a subset", () => {
    expect(sameData({ a: "1", b: { c: "2", d: "3" } }, { b: { d: "3", c: "2" }, a: "1" })).toBe(true);
    expect(sameData({ a: "1" }, { a: "1", b: "2" })).toBe(false);
    expect(containsAll({ owner: "x", extra: "kept" }, { owner: "x" })).toBe(true);
    expect(containsAll({ owner: "y" }, { owner: "x" })).toBe(false);
    expect(containsAll(undefined, {})).toBe(true);
  });
});
