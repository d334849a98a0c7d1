import { z } from "zod";
import { ConfigError } from "../../engine/index.js";
import { parseStackBlock, type ResetSettings } from "./config.js";

/**
 * Optional: put the configuration files stored with the snapshot (policy `files`) back on the
 * nodes before the reset restarts them (config `vault-raft-backup-dr:files`).
 *
 * One fetch on the machine that runs Pulumi: `vrb files <ref> --out - --base64 --json` prints the
 * verified, decrypted tar as base64 on stdout (a secret output, kept in memory and in the
 * encrypted state only) and, on stderr, the snapshot it used; the restore then restores exactly
 * that snapshot. Then one install per node, the fetched text on its stdin: over SSH
 * (`via: remote`) or on this machine (`via: local`, e.g. a node's folder of `vrb local`).
 */
const safeName = /^[A-Za-z0-9._-]+(?::[A-Za-z0-9._-]+)?$/;
const nodeSchema = z
  .object({
    /** remote: the SSH host; local: a label for the command's name. */
    host: z.string().min(1, "is required: the node's SSH host (remote) or a label (local)"),
    port: z.number().int().min(1).max(65535).optional(),
    user: z.string().min(1).optional(),
    /** Root the archived absolute paths are put under (remote default `/`). */
    dir: z.string().min(1).optional(),
    install: z.string().min(1, "must be a shell command").optional(),
  })
  .strict();

export const filesSchema = z
  .object({
    via: z.enum(["remote", "local"], { errorMap: () => ({ message: "must be 'remote' (SSH) or 'local' (this machine)" }) }),
    user: z.string().min(1).optional(),
    dir: z.string().min(1).optional(),
    /** Run tar (and chown) with sudo: default true for remote, false for local. */
    sudo: z.boolean().optional(),
    /** `user` or `user:group` given to every installed file (the archive does not keep owners). */
    owner: z.string().regex(safeName, "must be user or user:group (letters, digits, . _ -)").optional(),
    /** Replaces the default install script; it reads the base64 tar on stdin. */
    install: z.string().min(1, "must be a shell command").optional(),
    /** How to run vrb on the machine that runs Pulumi, from stacks/dr. */
    vrb: z.string().min(1).optional(),
    /** Default: the nodes of `reset` when it has the same `via`. */
    nodes: z.array(nodeSchema).min(1, "must list one entry per target node").optional(),
  })
  .strict();

export type FilesSettings = z.output<typeof filesSchema>;

export const DEFAULT_VRB = "node ../../dist/scripts/vrb.js";

export function parseFiles(raw: unknown, reset?: ResetSettings, source = "Pulumi config vault-raft-backup-dr:files"): FilesSettings {
  const files = parseStackBlock(filesSchema, raw, "files", source);
  if (!files.nodes) {
    if (reset?.via !== files.via) {
      throw new ConfigError(`${source}: nodes must list the target nodes (or set vault-raft-backup-dr:reset with via: ${files.via}, whose nodes are then used)`, {
        field: "files.nodes",
      });
    }
    files.nodes = reset.nodes.map((n) => ({ host: n.host, port: n.port, user: n.user ?? (files.user ? undefined : reset.user) }));
  }
  files.nodes.forEach((n, i) => {
    if (files.via === "remote" && !(n.user ?? files.user)) {
      throw new ConfigError(`${source}: remote install needs an SSH user: set files.user or files.nodes[${i}].user`, { field: "files.user" });
    }
    // Never a default of `/` on the machine that runs Pulumi.
    if (files.via === "local" && !(n.dir ?? files.dir) && !(n.install ?? files.install)) {
      throw new ConfigError(`${source}: nodes.${i}.dir is required for via local: the folder the files go under for node ${n.host} (or set files.dir)`, {
        field: `files.nodes.${i}.dir`,
      });
    }
  });
  return files;
}

/** POSIX shell single quotes: the value is one word, nothing in it is expanded. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface FetchTarget {
  /** The DR stack's `snapshot` setting: latest | s3://bucket/key | key. */
  ref: string;
  bucket: string;
  prefix?: string;
  cluster: string;
  /** The identity text arrives on stdin (never in the command, which state keeps in plain text). */
  identity: boolean;
}

/**
 * The fetch command run on the machine that runs Pulumi. Holds no secret: the identity comes on
 * stdin, its passphrase and the S3 credentials from the environment.
 */
export function fetchScript(files: FilesSettings, t: FetchTarget): string {
  const args = ["files", t.ref, "--bucket", t.bucket, ...(t.prefix !== undefined ? ["--prefix", t.prefix] : []), "--cluster", t.cluster, "--out", "-", "--base64", "--json"];
  if (t.identity) args.push("--identity", "-");
  const hint =
    "vault-raft-backup-dr:files: fetching the configuration files failed (see above); nothing was changed. Fix that, or remove vault-raft-backup-dr:files to restore without them.";
  return `${files.vrb ?? DEFAULT_VRB} ${args.map(shellQuote).join(" ")} || { rc=$?; echo ${shellQuote(hint)} >&2; exit $rc; }`;
}

/** The snapshot the fetch used: the `snapshot` field of the JSON line it prints on stderr. */
export function snapshotUsed(stderr: string | undefined): string {
  for (const line of (stderr ?? "").split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    try {
      const r = JSON.parse(line) as { snapshot?: unknown };
      if (typeof r.snapshot === "string" && r.snapshot.startsWith("s3://")) return r.snapshot;
    } catch {
      // not the report line
    }
  }
  throw new Error("vault-raft-backup-dr:files: the fetch printed no snapshot report on stderr (is files.vrb a vrb with `files --out - --json`?)");
}

export interface InstallCommand {
  name: string;
  host: string;
  port?: number;
  user?: string;
  script: string;
}

/**
 * The default install: the base64 tar from stdin, held in a shell variable (never written to a
 * file), extracted with its modes (`-p`; keys 0600) under `dir` (created if missing), then
 * optionally chowned.
 */
export function installScript(dir: string, sudo: boolean, owner?: string): string {
  const s = sudo ? "sudo " : "";
  const lines = [
    "set -e",
    "payload=$(cat)",
    `[ -n "$payload" ] || { echo 'vault-raft-backup-dr:files: no files on stdin' >&2; exit 1; }`,
    `${s}mkdir -p ${shellQuote(dir)}`,
    `printf '%s\\n' "$payload" | base64 -d | ${s}tar -x -p -f - -C ${shellQuote(dir)}`,
  ];
  if (owner) lines.push(`printf '%s\\n' "$payload" | base64 -d | tar -t -f - | while IFS= read -r f; do ${s}chown ${shellQuote(owner)} ${shellQuote(dir)}/"$f"; done`);
  lines.push(`echo "installed $(printf '%s\\n' "$payload" | base64 -d | tar -t -f - | wc -l) file(s) under ${dir.replace(/[^A-Za-z0-9._/-]/g, "?")}"`);
  return lines.join("\n");
}

/** One install per node; node settings override the shared ones. */
export function installCommands(files: FilesSettings): InstallCommand[] {
  return files.nodes!.map((n, i) => ({
    name: `files-node-${i + 1}`,
    host: n.host,
    port: n.port,
    user: n.user ?? files.user,
    script: n.install ?? files.install ?? installScript(n.dir ?? files.dir ?? "/", files.sudo ?? files.via === "remote", files.owner),
  }));
}
