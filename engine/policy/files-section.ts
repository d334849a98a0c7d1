import { z } from "zod";

/** Configuration files stored beside each snapshot (docs/encryption.md, "Configuration files"). */
export const filesSchema = z
  .object({
    paths: z
      .array(z.string().min(1, "must be a file, directory or glob path"))
      .min(1, "must list at least one file, directory or glob")
      .describe("Files, directories (recursively) and globs (`*`, `?`, `**`) on the backup host, e.g. /etc/openbao/openbao.hcl, /etc/openbao/tls/."),
    allowPlaintextSecrets: z
      .boolean()
      .default(false)
      .describe("Store files holding private keys (PEM, age, OpenPGP) without `encryption`. Default false: such a backup is refused before anything is uploaded."),
  })
  .strict()
  .describe("Configuration files backed up as one tar archive beside each snapshot (`<snapshot key>.files.tar`), encrypted like the snapshot; `vrb files` writes them back.");
