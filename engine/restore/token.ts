import { ConfigError, OperationError, messageOf } from "../errors.js";
import type { Progress } from "../progress.js";
import { VaultHttpError, type VaultClient } from "../vault/client.js";
import type { RestoreKeys } from "./keys.js";
import { GenerateRootRefused, generateRootAdvice, generateRootStatus, generateRootToken, revokeOwnToken } from "./root-token.js";
import type { RestoreRun, TokenSource } from "./restore-run.js";

export async function tokenWorks(client: VaultClient, progress?: Progress): Promise<boolean> {
  if (!client.hasToken()) return false;
  try {
    await client.get("auth/token/lookup-self");
    return true;
  } catch (err) {
    if (err instanceof VaultHttpError && (err.status === 403 || err.status === 401)) return false;
    progress?.warn(`token check failed: ${messageOf(err)}`);
    return false;
  }
}

export interface FoundToken {
  source: TokenSource;
  token?: string;
  /** Why each candidate failed, when none worked; or how the token was found. */
  detail: string;
}

/**
 * A working token for a cluster that came back from a snapshot, tried in this order: the
 * operator's (VAULT_TOKEN), the root token of the keys file (the ORIGINAL cluster's: it comes back
 * with the snapshot unless it was revoked), a short-lived root token made from the unseal/recovery
 * keys with generate-root where the cluster serves it (OpenBao >= 2.5.3 does not by default, Vault 1.x does). None
 * of these is required: "none" lets the caller verify what needs no token and say what it could not.
 * A "generated" token is the caller's to revoke. Leaves the client holding the token found (or none).
 */
export async function findWorkingToken(client: VaultClient, from: { token?: string; keys?: RestoreKeys }, progress?: Progress): Promise<FoundToken> {
  const candidates: [TokenSource, string | undefined, string][] = [
    ["operator", from.token, "the given token (VAULT_TOKEN)"],
    ["keys-file", from.keys?.rootToken, "the root token in the keys file"],
  ];
  const refused: string[] = [];
  for (const [source, token, label] of candidates) {
    if (!token) continue;
    client.setToken(token);
    if (await tokenWorks(client, progress)) return { source, token, detail: `${label} works` };
    refused.push(`${label} is not valid here`);
  }
  client.setToken(undefined);
  const generated = await tryGenerateRoot(client, from.keys?.keys ?? [], progress);
  if (generated.token) {
    client.setToken(generated.token);
    return { source: "generated", token: generated.token, detail: "short-lived root token made with generate-root" };
  }
  return { source: "none", detail: `no token: ${[...refused, generated.why].join("; ")}` };
}

async function tryGenerateRoot(client: VaultClient, keys: string[], progress?: Progress): Promise<{ token?: string; why: string }> {
  if (keys.length === 0) return { why: "no unseal/recovery keys to make one with generate-root" };
  try {
    await generateRootStatus(client);
  } catch (err) {
    if (err instanceof ConfigError) {
      const advice = generateRootAdvice(err instanceof GenerateRootRefused ? err.product : undefined);
      return { why: `the cluster does not serve generate-root (${advice.why}; ${advice.setting})` };
    }
    return { why: `generate-root status failed: ${messageOf(err)}` };
  }
  try {
    return { token: await generateRootToken(client, keys, client.addr), why: "" };
  } catch (err) {
    // The restore itself is done; keys that cannot make a token only limit the proof.
    progress?.warn(`generate-root failed: ${messageOf(err)}`);
    return { why: `generate-root failed (${messageOf(err)})` };
  }
}

/** The restore's step around findWorkingToken: records the source and the generated token to revoke. */
export async function obtainToken(run: RestoreRun, client: VaultClient, why?: string): Promise<TokenSource> {
  return run.log.run(why ? "get a token again" : "get a token for verification", client.addr, async (clock) => {
    const found = await findWorkingToken(client, { token: run.opts.token, keys: run.opts.keys }, run.progress);
    run.client.setToken(found.token);
    run.token = found.source;
    if (found.source === "generated") {
      run.generatedToken = found.token;
      const self = await client.get<{ data: { accessor: string } }>("auth/token/lookup-self");
      run.generatedTokenAccessor = self.body.data.accessor;
    }
    clock.detail = found.source === "none" ? `${found.detail}; only token-free checks will run` : `${found.detail}${why ? ` (${why})` : ""}`;
    return found.source;
  });
}

/** Revokes the token generate-root made, and proves it is gone. */
export async function revokeGeneratedToken(run: RestoreRun): Promise<void> {
  const token = run.generatedToken;
  if (!token) return;
  const c = run.client.forNode(run.nodes[0]!);
  c.setToken(token);
  await run.log.run("revoke generated root token", run.nodes[0], async (clock) => {
    await clock.vault(revokeOwnToken(c));
    // Proof, not hope: the token must now be refused.
    if (await tokenWorks(c)) throw new OperationError(`the generated root token (accessor ${run.generatedTokenAccessor}) still works after revoke-self`);
    clock.detail = `accessor ${run.generatedTokenAccessor} revoked; lookup-self now refused`;
  });
  run.generatedToken = undefined;
}
