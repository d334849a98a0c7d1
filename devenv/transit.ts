import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OperationError } from "../engine/errors.js";
import { registerSecret } from "../engine/redact.js";
import { silentProgress, type Progress } from "../engine/progress.js";
import { VaultClient } from "../engine/vault/client.js";
import { nodeHealth } from "../engine/vault/operations.js";
import { waitFor } from "../engine/wait.js";
import { serverEnvironment, type NodeTransitSeal } from "../engine/throwaway/nodes.js";
import { freePort } from "../engine/throwaway/ports.js";
import { isAlive, startDetached, stopProcess, tailLog } from "../engine/throwaway/process.js";
import { toolPath } from "../engine/throwaway/binaries.js";

/**
 * A separate OpenBao server that provides the transit engine for nodes with `seal "transit"`
 * (auto-unseal), as production clusters use a central Vault/OpenBao or a cloud KMS.
 *
 * It runs in dev mode: in memory, unsealed at start, its own process, port and log file. That keeps
 * it to one process and no keys of its own to keep; the price is that its keys live only as long as
 * the process, so it must not be restarted while clusters sealed by it are to be unsealed again
 * (`vrb local down` ends both together). Plain HTTP on 127.0.0.1.
 */
export interface TransitSealServer {
  /** http://127.0.0.1:<port> */
  address: string;
  /** Mount path of the transit engine, with a trailing slash ("transit/"). */
  mountPath: string;
  /** The key the environment's nodes seal with. */
  keyName: string;
  /** Token limited by a policy to encrypt/decrypt with `keyName` (secret): what the nodes' seal stanza gets. */
  token: string;
  /** The seal server's root token (secret): only the tool uses it, to create keys and tokens. */
  rootToken: string;
  /** Further keys made with `addTransitKey`: key name → token limited to that key (secret). */
  otherKeys: Record<string, string>;
  configPath: string;
  logPath: string;
  pid?: number;
}

export function registerTransitSecrets(server: TransitSealServer | undefined): void {
  if (!server) return;
  registerSecret(server.token);
  registerSecret(server.rootToken);
  Object.values(server.otherKeys ?? {}).forEach(registerSecret);
}

/** The stanza values for nodes sealed by `keyName` (default: the server's own key). */
export function transitSealFor(server: TransitSealServer, keyName = server.keyName): NodeTransitSeal {
  const token = keyName === server.keyName ? server.token : server.otherKeys?.[keyName];
  if (!token) {
    throw new OperationError(
      `the transit seal server at ${server.address} has no key '${keyName}' made by this tool (have: ${[server.keyName, ...Object.keys(server.otherKeys ?? {})].join(", ")}); create it with createTransitKey`,
    );
  }
  return { address: server.address, mountPath: server.mountPath, keyName, token };
}

export function transitSealServerRunning(server: TransitSealServer): boolean {
  return isAlive(server.pid, { marker: server.configPath });
}

function adminClient(server: TransitSealServer): VaultClient {
  return new VaultClient({ addr: server.address, token: server.rootToken });
}

function policyName(keyName: string): string {
  return `vrb-transit-seal-${keyName}`;
}

/**
 * Creates transit key `keyName` and a token for it: an orphan, periodic token (renewed by the
 * seal itself) whose only non-default policy allows encrypt and decrypt with that key.
 */
async function makeKeyAndToken(client: VaultClient, mountPath: string, keyName: string): Promise<string> {
  if (!/^[A-Za-z0-9_-]+$/.test(keyName)) {
    throw new OperationError(`transit key name '${keyName}': use letters, digits, '-' and '_'`);
  }
  const mount = mountPath.replace(/\/+$/, "");
  await client.post(`${mount}/keys/${keyName}`, { type: "aes256-gcm96" });
  const policy =
    `# written by vrb local: what a node's transit seal needs, nothing more\n` +
    `path "${mount}/encrypt/${keyName}" { capabilities = ["update"] }\n` +
    `path "${mount}/decrypt/${keyName}" { capabilities = ["update"] }\n`;
  await client.put(`sys/policies/acl/${policyName(keyName)}`, { policy });
  const res = await client.post<{ auth: { client_token: string } }>("auth/token/create-orphan", {
    policies: [policyName(keyName)],
    period: "768h",
    renewable: true,
    display_name: `vrb-transit-seal-${keyName}`,
  });
  const token = res.body.auth.client_token;
  registerSecret(token);
  return token;
}

/**
 * Starts a transit seal server under `dir` (config in `<dir>/transit-seal/`, log
 * `<dir>/transit-seal.log`), enables the transit engine and creates the key and its limited token.
 */
export async function startTransitSealServer(
  dir: string,
  opts: { keyName?: string; mountPath?: string; progress?: Progress; timeoutMs?: number } = {},
): Promise<TransitSealServer> {
  const progress = opts.progress ?? silentProgress;
  const sealDir = join(dir, "transit-seal");
  mkdirSync(sealDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const rootToken = `vrb-seal-root-${randomBytes(24).toString("base64url")}`;
  registerSecret(rootToken);
  const server: TransitSealServer = {
    address: `http://127.0.0.1:${port}`,
    mountPath: `${(opts.mountPath ?? "transit").replace(/^\/+|\/+$/g, "")}/`,
    keyName: opts.keyName ?? "vrb-autounseal",
    token: "",
    rootToken,
    otherKeys: {},
    configPath: join(sealDir, "seal-server.hcl"),
    logPath: join(dir, "transit-seal.log"),
  };
  // The config file adds nothing dev mode lacks; its path on the command line is how we recognise
  // our own process later (pids are reused).
  writeFileSync(server.configPath, `# written by vrb local: transit seal server (dev mode, in memory)\nui = false\nlog_level = "info"\n`, { mode: 0o600 });
  progress.info(`starting the transit seal server on ${server.address}`);
  server.pid = startDetached(
    toolPath("bao"),
    ["server", "-dev", "-dev-no-store-token", `-dev-listen-address=127.0.0.1:${port}`, `-config=${server.configPath}`],
    server.logPath,
    // The root token goes by environment, not argv (visible to every user in ps); HOME keeps any
    // token helper away from the user's own ~/.vault-token.
    serverEnvironment({ BAO_DEV_ROOT_TOKEN_ID: rootToken, HOME: sealDir }),
  );
  const client = adminClient(server);
  try {
    await waitFor(
      async () => {
        if (!transitSealServerRunning(server)) {
          throw new OperationError(`the transit seal server exited during start-up; log ${server.logPath}:\n${tailLog(server.logPath)}`);
        }
        const h = await nodeHealth(client);
        return h.role === "active" ? h : undefined;
      },
      { what: `the transit seal server to be active on ${server.address} (log: ${server.logPath})`, timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 150 },
    );
    await client.post(`sys/mounts/${server.mountPath.replace(/\/+$/, "")}`, { type: "transit" });
    server.token = await makeKeyAndToken(client, server.mountPath, server.keyName);
    progress.info(`transit seal server ready: key ${server.keyName} on ${server.mountPath}`);
    return server;
  } catch (err) {
    await stopTransitSealServer(server);
    throw err;
  } finally {
    await client.close();
  }
}

/**
 * Another key on the same seal server (with its own limited token): nodes sealed by it cannot
 * decrypt a keyring sealed by the server's default key.
 */
export async function addTransitKey(server: TransitSealServer, keyName: string): Promise<NodeTransitSeal> {
  if (keyName === server.keyName || server.otherKeys[keyName]) return transitSealFor(server, keyName);
  const client = adminClient(server);
  try {
    server.otherKeys[keyName] = await makeKeyAndToken(client, server.mountPath, keyName);
  } finally {
    await client.close();
  }
  return transitSealFor(server, keyName);
}

export async function stopTransitSealServer(server: TransitSealServer): Promise<void> {
  await stopProcess(server.pid, { marker: server.configPath });
  server.pid = undefined;
}
