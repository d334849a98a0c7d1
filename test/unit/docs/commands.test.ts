import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { CommanderError, type Command } from "commander";
import { describe, expect, it } from "vitest";
import { allCommands, buildProgram, COMMAND_DOCS } from "../../../scripts/cli/program.js";
import { docCommands, markdownFiles, repoRoot } from "./markdown.js";

/** The real `vrb` program with every action replaced by a no-op and all output swallowed. */
function parsingProgram(): Command {
  const program = buildProgram();
  for (const cmd of allCommands(program)) {
    cmd.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
    if (cmd.commands.length === 0) cmd.action(() => {});
  }
  return program;
}

/** Parses `vrb <args>` with the real program; returns the error text, or undefined when it parses. */
function parseError(args: string[]): string | undefined {
  try {
    parsingProgram().parse(args, { from: "user" });
    return undefined;
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) return undefined; // --help, --version
    return err instanceof Error ? err.message : String(err);
  }
}

describe("vrb command lines in the docs", () => {
  const commands = docCommands();

  it("finds the docs' command lines", () => {
    expect(commands.length).toBeGreaterThan(30);
  });

  it("every one parses with the real CLI (commands, options, option values)", () => {
    const failures = commands.flatMap((c) => {
      const error = parseError(c.args);
      return error ? [`${c.file}:${c.line}: ${c.text}\n    ${error}`] : [];
    });
    expect(failures, `vrb lines in the docs that the CLI rejects; fix the docs or the CLI:\n${failures.join("\n")}`).toEqual([]);
  });

  it("rejects what the CLI rejects (the check is not a no-op)", () => {
    expect(parseError(["backup", "--no-such-flag"])).toMatch(/unknown option/);
    expect(parseError(["bakup"])).toMatch(/unknown command/);
    expect(parseError(["prune", "--keep-last", "zero"])).toMatch(/--keep-last must be a whole number/);
    expect(parseError(["restore", "--help"])).toBeUndefined();
  });

  it("every command has a docs page and appears in the docs", () => {
    const program = buildProgram();
    for (const top of program.commands) {
      expect(COMMAND_DOCS[top.name()], `docs page of vrb ${top.name()}`).toBeDefined();
      expect(
        commands.some((c) => c.args[0] === top.name()),
        `no \`vrb ${top.name()}\` line in a shell block of the docs`,
      ).toBe(true);
    }
  });
});

describe("links in the docs", () => {
  it("every relative link points at a file of the repository, and every #anchor at a heading", () => {
    const slug = (h: string) =>
      h
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s-]/gu, "")
        .replace(/\s/g, "-");
    const headings = (file: string) =>
      readFileSync(join(repoRoot, file), "utf8")
        .split("\n")
        .filter((l) => /^#{1,6}\s/.test(l))
        .map((l) => slug(l.replace(/^#+\s/, "")));
    const broken: string[] = [];
    for (const file of markdownFiles()) {
      const text = readFileSync(join(repoRoot, file), "utf8");
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) {
          broken.push(`${file}: ${target} (links outside the repository are not allowed in the docs)`);
          continue;
        }
        const [path, anchor] = target.split("#");
        const resolved = path ? normalize(join(dirname(file), path)) : file;
        if (!existsSync(join(repoRoot, resolved))) broken.push(`${file}: ${target} (no such file)`);
        else if (anchor && resolved.endsWith(".md") && !headings(resolved).includes(anchor)) broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
