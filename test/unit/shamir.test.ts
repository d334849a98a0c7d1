import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { gfDiv, gfMul, shamirCombine, shamirSplit, ShamirShareError } from "../../engine/crypto/shamir.js";

describe("Shamir over GF(2^8) (AES field, 0x11B)", () => {
  it("multiplies as FIPS-197 says: {57}·{83} = {c1}, {57}·{13} = {fe}", () => {
    expect(gfMul(0x57, 0x83)).toBe(0xc1);
    expect(gfMul(0x57, 0x13)).toBe(0xfe);
    for (let a = 1; a < 256; a++) expect(gfMul(gfDiv(1, a), a)).toBe(1);
  });

  it("any threshold shares (x in the last byte) combine to the secret; fewer do not", () => {
    const secret = randomBytes(32);
    const shares = shamirSplit(secret, 5, 3, randomBytes);
    expect(shares.every((s) => s.length === 33)).toBe(true);
    expect(shamirCombine([shares[4]!, shares[0]!, shares[2]!]).equals(secret)).toBe(true);
    expect(shamirCombine(shares).equals(secret)).toBe(true);
    expect(shamirCombine([shares[1]!, shares[3]!]).equals(secret)).toBe(false);
  });

  it("refuses shares of different lengths and the same share twice", () => {
    const s = shamirSplit(randomBytes(32), 3, 2, randomBytes);
    expect(() => shamirCombine([s[0]!, s[0]!])).toThrow(ShamirShareError);
    expect(() => shamirCombine([s[0]!, s[1]!.subarray(1)])).toThrow(ShamirShareError);
  });
});
