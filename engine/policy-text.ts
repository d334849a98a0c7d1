import { existsSync, readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";
import { yaml } from "./lazy-modules.js";

/**
 * Reading a policy file as YAML text. A wrong file given as the policy (a binary, a script) must
 * end in one clean line naming the file and where it went wrong, never in the file's own bytes:
 * the YAML library quotes whole tokens of it in its messages.
 */

/**
 * Where data that should be UTF-8 YAML text goes wrong: the first control character (or byte
 * that is not UTF-8). Text already decoded is only checked for control characters: a U+FFFD in
 * it may be the file's own.
 */
export function firstNonTextOffset(data: Buffer | string): { offset: number; why: string } | undefined {
  // In bytes this scan is exact too: bytes below 0x80 never occur inside a multi-byte UTF-8 sequence.
  for (let i = 0; i < data.length; i++) {
    if (isControl(typeof data === "string" ? data.charCodeAt(i) : data[i]!)) return { offset: i, why: "a control character" };
  }
  if (typeof data === "string") return undefined;
  const bad = firstInvalidUtf8(data);
  return bad === undefined ? undefined : { offset: bad, why: "not valid UTF-8" };
}

/** YAML allows tab, LF and CR among the C0 controls; DEL is not printable either. */
function isControl(c: number): boolean {
  return (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f;
}

const REPLACEMENT = Buffer.from("\ufffd");

function firstInvalidUtf8(data: Buffer): number | undefined {
  const text = data.toString("utf8");
  // Every character before the first U+FFFD decoded from valid bytes, so its byte offset is the
  // length of that prefix re-encoded, unless the file itself holds a real U+FFFD there.
  for (let i = text.indexOf("\ufffd"); i !== -1; i = text.indexOf("\ufffd", i + 1)) {
    const offset = Buffer.byteLength(text.slice(0, i));
    if (!data.subarray(offset, offset + REPLACEMENT.length).equals(REPLACEMENT)) return offset;
  }
  return undefined;
}

/**
 * Refuses data that is not text before it is parsed, naming `source` and the first offending
 * offset (a file's bytes, or a config value's characters) and nothing of the data itself.
 */
export function assertPolicyText(data: Buffer | string, source: string, field?: string): void {
  const bad = firstNonTextOffset(data);
  if (!bad) return;
  const what = typeof data === "string" ? `is not YAML text: character ${bad.offset}` : `is not a text (YAML) file: byte ${bad.offset}`;
  const fix = field === "--policy" ? "pass the policy's YAML file with --policy" : "give the policy as YAML text";
  throw new ConfigError(`${source} ${what} is ${bad.why}; ${fix} (fields: docs/policy.md)`, { field });
}

/** A quoted token the YAML library repeats from the text; longer ones are shortened. */
const QUOTED_ECHO = /: "((?:[^"\\]|\\.){40})(?:[^"\\]|\\.)+"/g;

/**
 * The YAML library's error as one clean line: the problem without the library's trailing
 * "at line L, column C:" and source excerpt, and the position on its own.
 */
export function yamlProblem(err: unknown): { line?: number; column?: number; problem: string } {
  if (!(err instanceof yaml().YAMLParseError)) return { problem: err instanceof Error ? (err.message.split("\n")[0] ?? "") : String(err) };
  const problem = err.message
    .replace(/ at line \d+, column \d+(:[\s\S]*)?$/, "")
    .replace(QUOTED_ECHO, ': "$1…"')
    .trim();
  const at = err.linePos?.[0];
  return at ? { line: at.line, column: at.col, problem } : { problem };
}

function parseText(text: string, source: string, field?: string): unknown {
  try {
    // Warnings (an unknown tag, say) would go to stderr through process.emitWarning, quoting the text.
    return yaml().parse(text, { logLevel: "error" });
  } catch (err) {
    const { line, column, problem } = yamlProblem(err);
    const at = line === undefined ? "" : ` at line ${line}, column ${column}`;
    throw new ConfigError(`${source}: not valid YAML${at}: ${problem}`, { field });
  }
}

/** Parses policy YAML text; a syntax error is a ConfigError naming `source`, the line and column, and the problem. */
export function parsePolicyYaml(text: string, source: string): unknown {
  assertPolicyText(text, source);
  return parseText(text, source);
}

/** Reads and parses the policy file at `path`: it must exist and be UTF-8 YAML text. */
export function readPolicyYaml(path: string): unknown {
  if (!existsSync(path)) throw new ConfigError(`policy file ${path} does not exist; pass an existing file with --policy`, { field: "--policy" });
  const bytes = readFileSync(path);
  assertPolicyText(bytes, path, "--policy");
  return parseText(bytes.toString("utf8"), path, "--policy");
}
