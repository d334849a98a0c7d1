import { spawn } from "node:child_process";
import { ConfigError, OperationError } from "../errors.js";
import type { Progress } from "../progress.js";

/**
 * The operator's command that restarts one target node's server (`--restart-command`, the
 * StagedRestore input `restartCommand`), e.g. `ssh {host} sudo systemctl restart openbao`. An
 * auto-unseal node 1 must reload the restored cluster's keys once the snapshot is applied; a
 * restarted process loads them from storage and unseals itself with its seal, so no token is needed.
 */
export const RESTART_PLACEHOLDERS = {
  host: "the node's host name or IP (from its address, without brackets)",
  node: "the node's address as given in --nodes (https://vault-0:8200)",
  index: "the node's position in --nodes (1 for node 1)",
} as const;

const PLACEHOLDER = /\{([^{}\s]*)\}/g;
/** What a URL origin may hold; anything else would need shell quoting, and no such value is expected. */
const SHELL_SAFE = /^[A-Za-z0-9._:/[\]-]+$/;
/** Variables a restart command never needs: tokens and passphrases stay in this process. */
const WITHHELD_ENV = ["VAULT_TOKEN", "BAO_TOKEN", "VRB_IDENTITY_PASSPHRASE"];
const TAIL_LINES = 20;

/** The template, checked: not empty, only known placeholders. Said before any node is touched. */
export function checkRestartCommand(template: string | undefined, field = "--restart-command"): string | undefined {
  if (template === undefined) return undefined;
  const t = template.trim();
  const known = Object.keys(RESTART_PLACEHOLDERS);
  if (!t) {
    throw new ConfigError(`${field} is empty: give the shell command that restarts one node's server, e.g. 'ssh {host} sudo systemctl restart openbao'`, { field });
  }
  const unknown = [...t.matchAll(PLACEHOLDER)].map((m) => m[1]!).filter((p) => !known.includes(p));
  if (unknown.length) {
    throw new ConfigError(
      `${field} uses unknown placeholder(s) ${unknown.map((p) => `{${p}}`).join(", ")}; the known ones are ` +
        Object.entries(RESTART_PLACEHOLDERS)
          .map(([k, v]) => `{${k}} (${v})`)
          .join(", "),
      { field },
    );
  }
  return t;
}

/** The command for one node: placeholders replaced by the node's host, address and position. */
export function restartCommandFor(template: string, addr: string, index: number): string {
  const url = new URL(addr);
  const values: Record<string, string> = { host: url.hostname.replace(/^\[|\]$/g, ""), node: url.origin, index: String(index) };
  for (const [k, v] of Object.entries(values)) {
    if (!SHELL_SAFE.test(v)) throw new ConfigError(`the {${k}} of node ${index} ('${v}') holds characters a shell would interpret; name the node differently`, { field: "nodes" });
  }
  return template.replace(PLACEHOLDER, (_, name: string) => values[name]!);
}

/**
 * Runs the restart command for one node through `/bin/sh -c`, with the restore's step deadline.
 * Its output is shown line by line as progress (redacted like every progress line); a non-zero
 * exit, a signal or the deadline ends the restore with its last lines.
 */
export async function runRestartCommand(command: string, opts: { label: string; timeoutMs: number; timeoutSetting?: string; progress: Progress }): Promise<void> {
  const env = { ...process.env };
  for (const k of WITHHELD_ENV) delete env[k];
  const child = spawn("/bin/sh", ["-c", command], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const tail: string[] = [];
  const show = (stream: NodeJS.ReadableStream) => {
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (pending + chunk).split(/\r?\n/);
      pending = lines.pop() ?? "";
      for (const line of lines) say(line);
    });
    stream.on("end", () => pending && say(pending));
  };
  const say = (line: string) => {
    tail.push(line);
    if (tail.length > TAIL_LINES) tail.shift();
    opts.progress.info(`${opts.label}: ${line}`);
  };
  show(child.stdout);
  show(child.stderr);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // The whole process group: an ssh or a shell pipeline must not outlive the deadline.
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      child.kill("SIGKILL");
    }
  }, opts.timeoutMs);
  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  clearTimeout(timer);
  if (outcome.code === 0) return;
  const why = timedOut
    ? `did not finish within ${Math.round(opts.timeoutMs / 1000)} s (stopped${opts.timeoutSetting ? `; ${opts.timeoutSetting} sets the deadline` : ""})`
    : outcome.error
      ? `could not be started (${outcome.error.message})`
      : outcome.signal
        ? `was ended by ${outcome.signal}`
        : `exited with code ${outcome.code}`;
  const last = tail.length ? `; its last output:\n    ${tail.join("\n    ")}` : "; it printed nothing";
  throw new OperationError(`the restart command of ${opts.label} ('${command}') ${why}${last}`, { stage: opts.label });
}
