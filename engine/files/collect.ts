import { createHash } from "node:crypto";
import { createReadStream, type Stats } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "../errors.js";

/** One configuration file as found on the backup host. */
export interface CollectedFile {
  /** Absolute path on the backup host (what the manifest lists). */
  path: string;
  size: number;
  /** Permission bits (e.g. 0o600). */
  mode: number;
  sha256: string;
  /** Holds a private key (PEM, age or OpenPGP). */
  secret: boolean;
}

export interface FilesSettings {
  paths: string[];
  allowPlaintextSecrets: boolean;
}

/**
 * Private-key markers looked for in file contents: PEM private keys of any kind (RSA, EC, PKCS#8,
 * encrypted PKCS#8, OpenSSH), age secret keys, OpenPGP private key blocks. Public keys and
 * certificates are not secrets.
 */
const SECRET_MARKERS = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----|-----BEGIN PGP PRIVATE KEY BLOCK-----|AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]{10}/;
/** Longer than the longest marker: a marker split across two chunks is still seen. */
const OVERLAP = 64;

/** SHA-256 and the secret scan of one file, in one streamed read. */
async function scanFile(path: string): Promise<{ sha256: string; size: number; secret: boolean }> {
  const hash = createHash("sha256");
  let tail = "";
  let secret = false;
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    const b = chunk as Buffer;
    hash.update(b);
    size += b.length;
    if (!secret) {
      const text = tail + b.toString("latin1");
      secret = SECRET_MARKERS.test(text);
      tail = text.slice(-OVERLAP);
    }
  }
  return { sha256: hash.digest("hex"), size, secret };
}

function hasGlob(p: string): boolean {
  return /[*?[]/.test(p);
}

/** `*` and `?` within one path segment, `**` across segments, `[abc]` classes. */
function globRegex(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*" && pattern[i + 1] === "*") {
      re += ".*";
      i++;
      if (pattern[i + 1] === "/") i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i);
      if (end < 0) re += "\\[";
      else {
        re += pattern.slice(i, end + 1);
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Every regular file under `dir` (symlinks followed to files, not into directories). */
async function* walk(dir: string): AsyncGenerator<{ path: string; isDir: boolean }> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      yield { path: p, isDir: true };
      yield* walk(p);
    } else if (e.isFile() || e.isSymbolicLink()) yield { path: p, isDir: false };
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of walk(dir)) if (!e.isDir) out.push(e.path);
  return out;
}

/** Expands one `files.paths` entry to absolute file paths. */
async function expand(entry: string, field: string): Promise<string[]> {
  const abs = isAbsolute(entry) ? entry : resolve(entry);
  if (!hasGlob(abs)) {
    let st: Stats;
    try {
      st = await stat(abs);
    } catch {
      throw new ConfigError(`${field}: ${abs} does not exist or cannot be read; fix the path or remove it`, { field });
    }
    return st.isDirectory() ? filesUnder(abs) : [abs];
  }
  const segments = abs.split("/");
  const firstGlob = segments.findIndex(hasGlob);
  const base = segments.slice(0, firstGlob).join("/") || "/";
  const re = globRegex(abs);
  const out: string[] = [];
  try {
    for await (const e of walk(base)) {
      if (!re.test(e.path)) continue;
      if (e.isDir) out.push(...(await filesUnder(e.path)));
      else out.push(e.path);
    }
  } catch {
    // an unreadable or missing base: no match, said below
  }
  if (!out.length) throw new ConfigError(`${field}: the glob ${abs} matches no file`, { field });
  return out;
}

/**
 * Finds, hashes and scans the policy's files. Refuses (ConfigError, exit 2) when one holds a
 * private key and the archive would be stored in plain text, unless `allowPlaintextSecrets`.
 * Called before anything is uploaded.
 */
export async function collectFiles(settings: FilesSettings, encrypted: boolean): Promise<CollectedFile[]> {
  const paths = new Set<string>();
  for (const [i, entry] of settings.paths.entries()) for (const p of await expand(entry, `files.paths[${i}]`)) paths.add(p);
  const out: CollectedFile[] = [];
  for (const path of [...paths].sort()) {
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) continue; // a dangling symlink, a socket: not a configuration file
    const link = await lstat(path);
    const scanned = await scanFile(path).catch((err: unknown) => {
      throw new ConfigError(`files: ${path} cannot be read: ${err instanceof Error ? err.message : String(err)}`, { field: "files.paths" });
    });
    out.push({ path, mode: (link.isSymbolicLink() ? st : link).mode & 0o7777, ...scanned });
  }
  const secrets = out.filter((f) => f.secret).map((f) => f.path);
  if (secrets.length && !encrypted && !settings.allowPlaintextSecrets) {
    throw new ConfigError(
      `files: ${secrets.join(", ")} ${secrets.length === 1 ? "holds a private key" : "hold private keys"}, and the policy has no 'encryption': they would be stored in plain text. ` +
        "Set encryption (age or pgp recipients), leave these files out, or set files.allowPlaintextSecrets: true. Nothing was uploaded.",
      { field: "files.allowPlaintextSecrets" },
    );
  }
  return out;
}

/** The file's name inside the archive: its absolute path without the leading '/'. */
export function archiveName(path: string): string {
  return path.replace(/^\/+/, "");
}
