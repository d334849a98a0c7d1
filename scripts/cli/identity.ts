import type { Command } from "commander";
import { IDENTITY_PASSPHRASE_ENV, identitySourcesFromFiles, loadIdentities, type Identities } from "../../engine/index.js";

/** The `--identity FILE` flag of the commands that decrypt (verify, restore, drill, files). */
export interface IdentityFlags {
  identity?: string[];
}

export function addIdentityFlag(cmd: Command): Command {
  return cmd.option(
    "--identity <file>",
    `decrypt a client-side encrypted snapshot: an age identity file, or an armored OpenPGP private key (passphrase from ${IDENTITY_PASSPHRASE_ENV}); - reads it from stdin; repeatable`,
    (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
  );
}

/** The identities of the flags, unlocked; undefined without any. */
export async function identitiesFromFlags(o: IdentityFlags, env: NodeJS.ProcessEnv = process.env): Promise<Identities | undefined> {
  if (!o.identity?.length) return undefined;
  return loadIdentities(identitySourcesFromFiles(o.identity), env[IDENTITY_PASSPHRASE_ENV] || undefined);
}
