import type { Command } from "commander";
import { ConfigError, BYTE_SIZE_FORMS, parseByteSize, parseProduct } from "../../engine/index.js";
import { writeLocalPolicyFile } from "../../devenv/policy-file.js";
import { fillLocalEnvironment } from "../../devenv/fill.js";
import { s3ServerKindFromEnv, type S3ServerKind } from "../../devenv/s3server.js";
import { formatStatus, localStatus } from "../../devenv/status.js";
import {
  defaultLocalDir,
  localCommand,
  environmentExports,
  localDown,
  localUp,
  requireEnvironment,
  startLocalNode,
  stopLocalNode,
  addNodes,
  type LocalSealType,
} from "../../devenv/environment.js";
import { printJson, printText, progressFor, runCommand } from "./common.js";
import { intFlag } from "./options.js";

type UpFlags = {
  product: string;
  dir?: string;
  nodes: number;
  init: boolean;
  shares: number;
  threshold: number;
  seal: string;
  tls?: boolean;
  unauthedGenerateRoot?: boolean;
  s3: string | boolean;
  fill?: string;
  policyOut?: string;
  json?: boolean;
};

export function registerLocal(program: Command): void {
  const local = program.command("local").description("the embedded local environment: N OpenBao or HashiCorp Vault Raft nodes + an S3 server on 127.0.0.1");
  const dirOpt = ["--dir <path>", "state folder (default .vrb/local, or VRB_LOCAL_DIR)"] as const;

  local
    .command("up")
    .description(
      "start nodes (init, unseal, join) and the S3 server with a locked, versioned bucket; the nodes keep their product's " +
        "default listener settings (OpenBao: unauthenticated generate-root endpoints disabled, unless --unauthed-generate-root)",
    )
    .option(...dirOpt)
    .option("--product <name>", "openbao (pip-installed, the default) | vault (HashiCorp Vault, built from Go modules by 'npx vrb tools install')", "openbao")
    .option("--nodes <n>", "number of nodes", intFlag("--nodes", 1), 3)
    .option("--no-init", "leave the nodes uninitialised (a restore target)")
    .option("--shares <n>", "key shares: unseal keys (shamir) or recovery keys (transit)", intFlag("--shares", 1), 5)
    .option("--threshold <n>", "key threshold: unseal keys (shamir) or recovery keys (transit)", intFlag("--threshold", 1), 3)
    .option(
      "--seal <type>",
      "shamir (unseal keys) | transit (auto-unseal: also starts a transit seal server of its own, stopped by 'down'; " + "init makes recovery keys, nodes unseal themselves)",
      "shamir",
    )
    .option("--tls", "make a private CA and node certificates; nodes listen with https (see VAULT_CACERT in 'vrb local env')")
    .option(
      "--unauthed-generate-root",
      "NON-DEFAULT relaxation on OpenBao: set disable_unauthed_generate_root_endpoints = false on every listener, so a root " +
        "token can be generated from the unseal/recovery keys without a token (OpenBao >= 2.5.3 disables this by default; Vault 1.x serves it anyway)",
    )
    .option("--s3 <server>", "seaweedfs | moto (default VRB_S3_SERVER or seaweedfs)")
    .option("--no-s3", "do not start an S3 server")
    .option("--fill <size>", `then write random KV v2 data (mount fill/) until a snapshot holds about this much: ${BYTE_SIZE_FORMS}`)
    .option("--policy-out <file>", "write the environment's backup policy here (default <dir>/policy.yaml); no secret goes in it")
    .option("--json", "print the status as JSON")
    .action(async (o: UpFlags) =>
      runCommand(o, async () => {
        const product = parseProduct(o.product);
        if (!product) throw new ConfigError(`--product '${o.product}': use openbao or vault`, { field: "--product" });
        if (o.threshold > o.shares) throw new ConfigError(`--threshold (${o.threshold}) cannot exceed --shares (${o.shares})`, { field: "--threshold" });
        if (o.seal !== "shamir" && o.seal !== "transit") throw new ConfigError(`--seal '${o.seal}': use shamir or transit`, { field: "--seal" });
        const seal: LocalSealType = o.seal;
        const fill = o.fill === undefined ? undefined : parseByteSize(o.fill, "--fill");
        if (fill !== undefined && !o.init) throw new ConfigError("--fill needs an initialised cluster; drop --no-init", { field: "--fill" });
        if (o.policyOut !== undefined && o.s3 === false)
          throw new ConfigError("--policy-out needs the S3 server (a policy's destination); drop --no-s3", { field: "--policy-out" });
        const s3: S3ServerKind | false = o.s3 === false ? false : s3ServerKindFromEnv(typeof o.s3 === "string" ? { VRB_S3_SERVER: o.s3 } : process.env);
        const env = await localUp({
          product,
          dir: o.dir,
          nodes: o.nodes,
          init: o.init,
          shares: o.shares,
          threshold: o.threshold,
          seal,
          tls: o.tls === true,
          unauthedGenerateRoot: o.unauthedGenerateRoot === true,
          s3,
          progress: progressFor(o),
        });
        const filled = fill === undefined ? undefined : await fillLocalEnvironment(env, fill, { progress: progressFor(o) });
        const policyFile = env.s3 ? writeLocalPolicyFile(env, { path: o.policyOut, canaries: filled ? [filled.canary] : undefined }) : undefined;
        const status = await localStatus(env);
        if (o.json) printJson({ ...status, ...(policyFile ? { policyFile } : {}), ...(filled ? { fill: filled } : {}) });
        else {
          const use = policyFile ? `\n  vrb backup --policy ${policyFile}` : "";
          const written = policyFile ? `\n\npolicy file: ${policyFile}` : "";
          printText(`${formatStatus(status)}${written}\n\nuse it from this shell:\n  eval "$(${localCommand("env", env.dir)})"${use}`);
        }
      }),
    );

  local
    .command("down")
    .description("stop every process the local environment started (nodes, its transit seal server, S3) and remove its data")
    .option(...dirOpt)
    .action(async (o: { dir?: string }) => runCommand(o, async () => localDown(o.dir ?? defaultLocalDir(), progressFor(o))));

  local
    .command("status")
    .description("the shape (seal, TLS, listener relaxations); each node's role, sealed state, raft index; the transit seal server; the S3 endpoint")
    .option(...dirOpt)
    .option("--json", "JSON report")
    .action(async (o: { dir?: string; json?: boolean }) =>
      runCommand(o, async () => {
        const status = await localStatus(requireEnvironment(o.dir));
        if (o.json) printJson(status);
        else printText(formatStatus(status));
      }),
    );

  local
    .command("env")
    .description(`print export lines: eval "$(vrb local env)" (VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT with --tls, AWS_* ...)`)
    .option(...dirOpt)
    .action(async (o: { dir?: string }) =>
      runCommand(o, async () => {
        // Deliberately unredacted: this is how a user gets the local token into their shell.
        process.stdout.write(environmentExports(requireEnvironment(o.dir)) + "\n");
      }),
    );

  local
    .command("stop-node <node>")
    .description("stop one node (id like node-2, or its address); --wipe also deletes its Raft data")
    .option(...dirOpt)
    .option("--wipe", "delete the node's data as well")
    .action(async (node: string, o: { dir?: string; wipe?: boolean }) =>
      runCommand(o, async () => {
        await stopLocalNode(requireEnvironment(o.dir), node, { wipe: o.wipe });
        progressFor(o).info(`${node} stopped${o.wipe ? " and wiped" : ""}`);
      }),
    );

  local
    .command("start-node <node>")
    .description("start a stopped node again (a wiped node comes back empty and uninitialised; a transit-sealed node unseals itself)")
    .option(...dirOpt)
    .action(async (node: string, o: { dir?: string }) =>
      runCommand(o, async () => {
        await startLocalNode(requireEnvironment(o.dir), node);
        progressFor(o).info(`${node} started`);
      }),
    );

  local
    .command("add-nodes <count>")
    .description("start more fresh, uninitialised nodes of the environment's shape: same seal, CA and listener settings (restore targets)")
    .option(...dirOpt)
    .action(async (count: string, o: { dir?: string }) =>
      runCommand(o, async () => {
        const nodes = await addNodes(requireEnvironment(o.dir), intFlag("count", 1)(count), progressFor(o));
        printText(nodes.map((n) => `${n.id} ${n.apiAddr}`).join("\n"));
      }),
    );
}
