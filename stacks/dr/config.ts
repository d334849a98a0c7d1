import { z } from "zod";
import { ConfigError } from "../../engine/index.js";

/**
 * Optional per-node reset before a rebuild (config `vault-raft-backup-dr:reset`): stop the
 * service, wipe the Raft data directory, start it again, so every target node is empty and
 * uninitialised. One command per node, run over SSH (`via: remote`) or on the machine that
 * runs Pulumi (`via: local`).
 */
const step = z.string().min(1, "must be a shell command");
const nodeSchema = z
  .object({
    /** remote: the SSH host; local: a label for the command's name. */
    host: z.string().min(1, "is required: the node's SSH host (remote) or a label (local)"),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    stop: step.optional(),
    wipe: step.optional(),
    start: step.optional(),
  })
  .strict();

export const resetSchema = z
  .object({
    via: z.enum(["remote", "local"], { errorMap: () => ({ message: "must be 'remote' (SSH) or 'local' (this machine)" }) }),
    user: z.string().min(1).optional(),
    stop: step,
    wipe: step,
    start: step,
    nodes: z.array(nodeSchema).min(1, "must list one entry per target node"),
  })
  .strict();

export type ResetSettings = z.output<typeof resetSchema>;

export interface ResetCommand {
  name: string;
  host: string;
  port?: number;
  user?: string;
  /** stop, wipe and start in that order; the first failure stops the chain. */
  script: string;
}

/**
 * A DR stack config block checked against its schema; the first problem becomes a ConfigError
 * naming the field under `name` (`reset.nodes.0.host`).
 */
export function parseStackBlock<S extends z.ZodTypeAny>(schema: S, raw: unknown, name: string, source: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data as z.output<S>;
  const i = r.error.issues[0]!;
  const field = i.path.join(".") || "(top level)";
  const msg = i.code === "unrecognized_keys" ? `has unknown field(s) ${i.keys.join(", ")}` : i.message;
  throw new ConfigError(`${source}: ${field} ${msg}`, { field: `${name}.${field}` });
}

export function parseReset(raw: unknown, source = "Pulumi config vault-raft-backup-dr:reset"): ResetSettings {
  const reset = parseStackBlock(resetSchema, raw, "reset", source);
  if (reset.via === "remote" && reset.nodes.some((n) => !(n.user ?? reset.user))) {
    throw new ConfigError(`${source}: remote reset needs an SSH user: set reset.user or nodes[].user`, { field: "reset.user" });
  }
  return reset;
}

/** One command per node; node settings override the shared ones. */
export function resetCommands(reset: ResetSettings): ResetCommand[] {
  return reset.nodes.map((n, i) => ({
    name: `reset-node-${i + 1}`,
    host: n.host,
    port: n.port,
    user: n.user ?? reset.user,
    script: ["set -e", n.stop ?? reset.stop, n.wipe ?? reset.wipe, n.start ?? reset.start].join("\n"),
  }));
}
