/**
 * Shamir's secret sharing as Vault's and OpenBao's `shamir` package does it: one polynomial per
 * secret byte over GF(2^8) with the AES field polynomial (x^8 + x^4 + x^3 + x + 1, 0x11B), and a
 * share is the polynomial's value at x for every byte of the secret followed by x itself (the
 * share's LAST byte). Any `threshold` shares give the secret back by Lagrange interpolation at 0;
 * fewer give an unrelated value of the same length (nothing says it is wrong: only what it opens).
 */

/** exp[i] = 3^i and log[3^i] = i in GF(2^8)/0x11B (3 generates the multiplicative group). */
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let v = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = v;
    LOG[v] = i;
    // v * 3 = v * 2 xor v, reduced by 0x11B.
    const twice = (v << 1) ^ (v & 0x80 ? 0x11b : 0);
    v = (twice ^ v) & 0xff;
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
}

export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[LOG[a]! + LOG[b]!]!;
}

export function gfDiv(a: number, b: number): number {
  if (b === 0) throw new RangeError("division by zero in GF(2^8)");
  if (a === 0) return 0;
  return EXP[LOG[a]! + 255 - LOG[b]!]!;
}

export class ShamirShareError extends Error {}

/**
 * The secret that `shares` (each: secret-length bytes, then its x coordinate) combine to. Throws
 * ShamirShareError when fewer than two shares are given, lengths differ, or two share one x.
 */
export function shamirCombine(shares: Buffer[]): Buffer {
  if (shares.length < 2) throw new ShamirShareError("at least two shares are needed to combine a Shamir secret");
  const len = shares[0]!.length;
  if (len < 2 || shares.some((s) => s.length !== len)) throw new ShamirShareError("the shares are not all of the same length");
  const xs = shares.map((s) => s[len - 1]!);
  if (new Set(xs).size !== xs.length) throw new ShamirShareError("two shares have the same x coordinate (the same key given twice?)");
  // Lagrange basis at 0 for each share: prod over j != i of x_j / (x_i xor x_j).
  const basis = xs.map((xi, i) => xs.reduce((acc, xj, j) => (j === i ? acc : gfMul(acc, gfDiv(xj, xi ^ xj))), 1));
  const secret = Buffer.alloc(len - 1);
  for (let b = 0; b < len - 1; b++) {
    let v = 0;
    for (let i = 0; i < shares.length; i++) v ^= gfMul(shares[i]![b]!, basis[i]!);
    secret[b] = v;
  }
  return secret;
}

/**
 * Splits `secret` into `parts` shares, any `threshold` of which combine to it (x coordinates
 * 1..parts in a random order, random coefficients). For tests and tools; the restore only combines.
 */
export function shamirSplit(secret: Buffer, parts: number, threshold: number, random: (n: number) => Buffer): Buffer[] {
  if (threshold < 2 || parts < threshold || parts > 255) throw new RangeError("need 2 <= threshold <= parts <= 255");
  const xs = [...Array(parts).keys()].map((i) => i + 1);
  const order = random(parts);
  xs.sort((a, b) => order[a - 1]! - order[b - 1]! || a - b);
  const shares = xs.map((x) => {
    const s = Buffer.alloc(secret.length + 1);
    s[secret.length] = x;
    return s;
  });
  for (let b = 0; b < secret.length; b++) {
    const coeffs = [secret[b]!, ...random(threshold - 1)];
    for (const s of shares) {
      const x = s[secret.length]!;
      // Horner: value of the polynomial at x.
      let y = 0;
      for (let k = coeffs.length - 1; k >= 0; k--) y = gfMul(y, x) ^ coeffs[k]!;
      s[b] = y;
    }
  }
  return shares;
}
