import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { afterEach, describe, expect, it, vi } from "vitest";
import { configErrorOf } from "../support/config-error.js";
import { ConfigError } from "../../engine/index.js";
import { loadPolicyFile, parsePolicyText } from "../../engine/policy.js";
import { stderrProgress } from "../../engine/progress.js";
import { tempDir } from "../support/env.js";
import { binaryFile } from "../support/not-text.js";

// Issue 26, point 10: what the operator reads when a policy file is the wrong file or bad YAML,
// and the transfer rate shown while an operation retries.

describe("policy file messages", () => {
  it("a binary file as the policy: refused naming the file and the first byte that is not text, none of its bytes echoed", () => {
    const path = binaryFile(tempDir("msg-bin"));
    // What the YAML library alone says of it: 6.5 KB of the file's bytes.
    expect(() => parseYaml(readFileSync(path, "utf8"))).toThrow(/^Unexpected scalar token in YAML stream: "[\s\S]{6000}/);
    const err = configErrorOf(() => loadPolicyFile(path));
    expect(err.message).toBe(`${path} is not a text (YAML) file: byte 0 is a control character; pass the policy's YAML file with --policy (fields: docs/policy.md)`);
    expect(err.field).toBe("--policy");
    expect(err.exitCode).toBe(2);
  });

  it("bytes that are not UTF-8 are found at their offset", () => {
    const dir = tempDir("msg-utf8");
    const path = join(dir, "latin1.yaml");
    // "café" in Latin-1: é is one byte 0xe9, not UTF-8.
    writeFileSync(path, Buffer.from("cluster:\n  name: caf\xe9\n", "latin1"));
    const err = configErrorOf(() => loadPolicyFile(path));
    expect(err.message).toMatch(new RegExp(`^${path} is not a text \\(YAML\\) file: byte 20 is not valid UTF-8; `));
  });

  it("UTF-8 text with a real U+FFFD and a byte-order mark is text", () => {
    const dir = tempDir("msg-fffd");
    const path = join(dir, "p.yaml");
    writeFileSync(path, "\ufeffcluster:\n  name: prod\n  nodes: [http://127.0.0.1:8200]\ndestination: { bucket: b-\ufffd }\n");
    // Text, so it gets as far as the schema, which names the field.
    expect(configErrorOf(() => loadPolicyFile(path)).message).toMatch(/destination\.bucket/);
  });

  it("a policy given as text with a control character names its offset", () => {
    expect(configErrorOf(() => parsePolicyText("cluster:\n\u0000", "vault-raft-backup:policy")).message).toBe(
      "vault-raft-backup:policy is not YAML text: character 9 is a control character; give the policy as YAML text (fields: docs/policy.md)",
    );
  });

  it("a YAML syntax error is one line ending with its line, column and the problem", () => {
    const err = configErrorOf(() => parsePolicyText("cluster:\n  name: x\n  nodes: [a\n", "prod.yaml"));
    expect(err.message).toMatch(/^prod\.yaml: not valid YAML at line 4, column 1: Flow sequence in block collection must be sufficiently indented and end with a \]$/);
    const nested = configErrorOf(() => parsePolicyText("a: 1\n b: 2\n", "prod.yaml"));
    expect(nested.message).toMatch(/^prod\.yaml: not valid YAML at line \d+, column \d+: \S[^\n]*[^:\s]$/);
  });

  it("a text file that is not YAML: the token the YAML library quotes is cut short", () => {
    // The start of a Perl script: the YAML library quotes the rest of it, 4 KB here.
    const script =
      `#!/usr/bin/perl\n    eval 'exec /usr/bin/perl -S $0 \${1+"$@"}'\n\tif 0; # ^ Run only under a shell\n\n=head1 NAME\n\n` +
      "a frontend to a module list, not a policy\n".repeat(100);
    const err = configErrorOf(() => parsePolicyText(script, "corelist"));
    expect(err.message).toBe('corelist: not valid YAML at line 5, column 1: Unexpected scalar token in YAML stream: "=head1 NAME\\n\\na frontend to a module list…"');
  });

  it("YAML warnings (an unknown tag) are not printed with the text they quote", () => {
    const emitted = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    try {
      expect(() => parsePolicyText("cluster: !secretive value\n", "prod.yaml")).toThrow(ConfigError);
      expect(emitted).not.toHaveBeenCalled();
    } finally {
      emitted.mockRestore();
    }
  });
});

describe("transfer rates while an operation retries", () => {
  let lines: string[] = [];
  afterEach(() => vi.restoreAllMocks());

  /** stderrProgress on a clock the test sets, its lines collected. */
  function progressAt(): { bytes: (stage: string, done: number, at: number, total?: number) => void } {
    lines = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk).trimEnd()), true));
    let now = 0;
    const p = stderrProgress("vrb", () => now);
    return {
      bytes: (stage, done, at, total) => {
        now = at;
        p.bytes!(stage, done, total);
      },
    };
  }

  const KiB = 1024;
  const MiB = 1024 * KiB;

  it("an attempt retried after a 19 s back-off: its rate starts again, the back-off is not in it", () => {
    const p = progressAt();
    // Attempt 1 streams 40 KiB in 0.4 s, then fails.
    for (let i = 1; i <= 40; i++) p.bytes("snapshot stream", i * KiB, i * 10);
    // Attempt 2, after the back-off: 1 KiB per 10 ms again (100 KiB/s).
    for (let i = 1; i <= 200; i++) p.bytes("snapshot stream", i * KiB, 19_400 + i * 10, 200 * KiB);
    // The first line of attempt 2 has no rate yet (it said "1.0 KiB (53 B/s)": 1 KiB over the back-off).
    expect(lines.slice(1)).toEqual([
      "vrb: snapshot stream: 1.0 KiB of 200.0 KiB",
      "vrb: snapshot stream: 101.0 KiB of 200.0 KiB (100.0 KiB/s)",
      "vrb: snapshot stream: 200.0 KiB of 200.0 KiB (100.0 KiB/s)",
    ]);
  });

  it("a counter that stops during a retry (a part sent again, a download resumed): the rate is of the time it moved", () => {
    const p = progressAt();
    // 1 MiB per 100 ms for 1 s, a 20 s wait, then on at the same pace.
    for (let i = 1; i <= 10; i++) p.bytes("verify", i * MiB, i * 100, 30 * MiB);
    for (let i = 11; i <= 30; i++) p.bytes("verify", i * MiB, 20_000 + i * 100, 30 * MiB);
    expect(lines.at(-1)).toBe("vrb: verify: 30.0 MiB of 30.0 MiB (10.0 MiB/s)");
  });

  it("a counter reported again at its total (a decrypting read: the stored bytes arrive first) prints one finished line; a retry that finishes again prints another", () => {
    const p = progressAt();
    for (let i = 1; i <= 30; i++) p.bytes("verify", i * MiB, i * 10, 30 * MiB);
    // The plaintext is still being checked: every chunk of it reports the stored bytes, all in.
    for (let i = 1; i <= 2000; i++) p.bytes("verify", 30 * MiB, 300 + i, 30 * MiB);
    expect(lines).toEqual(["vrb: verify: 1.0 MiB of 30.0 MiB", "vrb: verify: 30.0 MiB of 30.0 MiB (100.0 MiB/s)"]);
    // The download starts over and finishes again within the second.
    for (let i = 1; i <= 30; i++) p.bytes("verify", i * MiB, 2300 + i * 10, 30 * MiB);
    p.bytes("verify", 30 * MiB, 2700, 30 * MiB);
    expect(lines.slice(2)).toEqual(["vrb: verify: 1.0 MiB of 30.0 MiB", "vrb: verify: 30.0 MiB of 30.0 MiB (100.0 MiB/s)"]);
  });

  it("a slow counter of whole parts, seconds apart, keeps its true rate", () => {
    const p = progressAt();
    for (let i = 1; i <= 6; i++) p.bytes("upload", i * 8 * MiB, i * 6_000);
    // 40 MiB in the 30 s after the first part: 1.3 MiB/s.
    expect(lines.at(-1)).toBe("vrb: upload: 48.0 MiB (1.3 MiB/s)");
  });
});
