import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Command } from "commander";
import { afterEach, describe, expect, it } from "vitest";
import { packageInfo } from "../../engine/package-info.js";
import { COMMAND_MODULES, programFor } from "../../scripts/cli/commands.js";
import { allCommands, buildProgram } from "../../scripts/cli/program.js";
import { tempDir, vrbBin } from "../support/env.js";
import { childrenOf } from "../support/processes.js";

// Issue 22: `vrb` loads only the module of the command it runs (scripts/cli/commands.ts) and, run as
// a program, starts one Node with the bounded young generation (scripts/vrb.ts's interpreter line).
// These tests hold the lazily built program to the whole one, and run the real CLI.

const bin = vrbBin();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(file, args, { env: { ...process.env, HOME: tempDir("cli-home"), ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const vrb = (args: string[], env?: Record<string, string>) => run(process.execPath, [bin, ...args], env);

/** Each command's path from the root (`["local", "up"]`), every subcommand included. */
function commandPaths(program: Command): string[][] {
  const paths: string[][] = [];
  const walk = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      paths.push([...path, sub.name()]);
      walk(sub, [...path, sub.name()]);
    }
  };
  walk(program, []);
  return paths;
}

const shape = (cmd: Command) => allCommands(cmd).map((c) => ({ name: c.name(), options: c.options.map((o) => o.flags), help: c.helpInformation() }));

describe("the command table (scripts/cli/commands.ts)", () => {
  it("names every command the whole program registers, in its order", () => {
    expect(Object.keys(COMMAND_MODULES)).toEqual(buildProgram().commands.map((c) => c.name()));
  });

  it("a command loaded alone has the same subcommands, options and help as in the whole program", async () => {
    const whole = buildProgram();
    for (const name of Object.keys(COMMAND_MODULES)) {
      const alone = (await programFor([name])).commands.find((c) => c.name() === name);
      expect(alone, `vrb ${name} alone`).toBeDefined();
      expect(shape(alone!), `vrb ${name}`).toEqual(shape(whole.commands.find((c) => c.name() === name)!));
    }
  });

  it("no command, an option first or a mistyped command: every command is loaded", async () => {
    const all = buildProgram().commands.map((c) => c.name());
    for (const args of [[], ["--help"], ["help", "backup"], ["bakup"]]) {
      expect(
        (await programFor(args)).commands.map((c) => c.name()),
        args.join(" "),
      ).toEqual(all);
    }
    expect((await programFor(["list"])).commands.map((c) => c.name())).toEqual(["list"]);
  });
});

describe("vrb --help and --version through the real CLI", () => {
  it("every command and subcommand: `vrb <command> --help` prints its usage, every option it registers and its docs page, exit 0", async () => {
    const whole = buildProgram();
    const paths = commandPaths(whole);
    expect(paths.length).toBeGreaterThan(Object.keys(COMMAND_MODULES).length);
    const failures: string[] = [];
    // Two at a time: the machine has two cores.
    for (let i = 0; i < paths.length; i += 2) {
      await Promise.all(
        paths.slice(i, i + 2).map(async (path) => {
          let cmd: Command = whole;
          for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
          const r = await vrb([...path, "--help"]);
          const missing = [`Usage: vrb ${path.join(" ")} `, ...cmd.options.map((o) => o.flags), "Docs: "].filter((text) => !r.stdout.includes(text));
          if (r.code !== 0 || missing.length) failures.push(`vrb ${path.join(" ")} --help: exit ${r.code}, missing ${JSON.stringify(missing)}\n${r.stderr}`);
        }),
      );
    }
    expect(failures).toEqual([]);
  });

  it("`vrb --help` lists every command", async () => {
    const r = await vrb(["--help"]);
    expect(r.code, r.stderr).toBe(0);
    for (const name of Object.keys(COMMAND_MODULES)) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, "m"));
  });

  it("`vrb --version` and `vrb -V` print the package's version and nothing else, exit 0", async () => {
    for (const flag of ["--version", "-V"]) {
      const r = await vrb([flag]);
      expect(r, flag).toEqual({ code: 0, stdout: `${packageInfo().version}\n`, stderr: "" });
    }
  });

  it("a mistyped command is a usage error that names the command meant, exit 2", async () => {
    const r = await vrb(["bakup"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'bakup'");
    expect(r.stderr).toContain("Did you mean backup?");
  });
});

describe("the vrb executable: one Node, started by its interpreter line", () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    server = undefined;
  });

  /**
   * Runs `sh vrb.js backup` (what the kernel does with the npm bin) against a server that accepts
   * connections and never answers; once vrb's first request arrives, returns vrb's command line and
   * children, then sends SIGTERM and returns how it ended.
   */
  async function backupHeldAtFirstRequest(env: Record<string, string> = {}): Promise<{ cmdline: string[]; children: number[]; ended: Run }> {
    const sockets: Socket[] = [];
    let stopping = false;
    const first = new Promise<void>((resolve) => {
      server = createServer((s) => {
        // Once vrb is told to stop, its clean-up's requests fail at once instead of waiting too.
        if (stopping) s.destroy();
        sockets.push(s);
        resolve();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const { port } = server!.address() as { port: number };
    const url = `http://127.0.0.1:${port}`;
    const child = spawn("/bin/sh", [bin, "backup", "--vault-addr", url, "--cluster", "one-process", "--bucket", "held", "--prefix", "p/"], {
      env: {
        ...process.env,
        HOME: tempDir("cli-home"),
        VAULT_TOKEN: "not-a-real-token",
        AWS_ENDPOINT_URL_S3: url,
        AWS_ACCESS_KEY_ID: "held",
        AWS_SECRET_ACCESS_KEY: "held-secret",
        AWS_REGION: "us-east-1",
        NODE_OPTIONS: "",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
    await Promise.race([first, closed.then((code) => Promise.reject(new Error(`vrb ended (${code}) before its first request\n${stderr}`)))]);
    // /bin/sh has replaced itself with node: same pid.
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const children = childrenOf(child.pid!);
    child.kill("SIGTERM");
    stopping = true;
    for (const s of sockets) s.destroy();
    const code = await closed;
    return { cmdline, children, ended: { code, stdout, stderr } };
  }

  it("`vrb backup` runs in the one Node the interpreter line starts, with its heap settings; SIGTERM reaches it: exit 143", async () => {
    const { cmdline, children, ended } = await backupHeldAtFirstRequest();
    expect(cmdline[0]).toMatch(/node$/);
    expect(cmdline.slice(1, 4)).toEqual(["--max-semi-space-size=1", "--initial-old-space-size=64", bin]);
    expect(children, "no relaunched worker").toEqual([]);
    expect(ended.code, ended.stderr).toBe(143);
    expect(ended.stderr).toContain("vrb: SIGTERM received: stopping at the next safe point");
  });

  it("NODE_OPTIONS choosing the young generation's size is left to choose it, still in one process", async () => {
    const { cmdline, children, ended } = await backupHeldAtFirstRequest({ NODE_OPTIONS: "--max-semi-space-size=8" });
    // The old generation's starting limit is still set: NODE_OPTIONS may not carry it.
    expect(cmdline.slice(1)).toEqual(["--initial-old-space-size=64", bin, "backup", ...cmdline.slice(4)]);
    expect(cmdline.join(" ")).not.toContain("--max-semi-space-size");
    expect(children).toEqual([]);
    expect(ended.code, ended.stderr).toBe(143);
  });
});
