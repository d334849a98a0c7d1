import { CommanderError, type Command } from "commander";
import { describe, expect, it } from "vitest";
import { allCommands, buildProgram, COMMAND_DOCS } from "../../../scripts/cli/program.js";
import { docCommands } from "./markdown.js";

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
