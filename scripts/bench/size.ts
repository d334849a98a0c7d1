const MiB = 1024 * 1024;

/** "256MiB", "1GiB", "512" (MiB): bytes, for the benches' --size. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|K|M|G)?$/i.exec(text.trim());
  if (!m) throw new Error(`--size '${text}' is not a size; use e.g. 256MiB or 1GiB`);
  const unit = (m[2] ?? "MiB").toUpperCase().replace("I", "").replace(/B$/, "");
  const mult: Record<string, number> = { "": 1, K: 1024, M: MiB, G: 1024 * MiB };
  return Math.round(Number(m[1]) * mult[unit]!);
}
