import { z } from "zod";

/** Client-side encryption of every stored object (docs/encryption.md). One format per policy. */
export const encryptionSchema = z
  .object({
    age: z
      .array(z.string().regex(/^age1[0-9a-z]+$/, "must be an age recipient (public key) like 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'"))
      .min(1, "must list at least one age recipient, or leave 'age' out")
      .optional()
      .describe("age X25519 (or post-quantum) recipients, 'age1...': each can decrypt with its identity file (`age-keygen`)."),
    pgp: z
      .array(z.string().min(1, "must be a file path or armored public key text"))
      .min(1, "must list at least one OpenPGP public key, or leave 'pgp' out")
      .optional()
      .describe(
        "OpenPGP public keys: file paths (relative to the working directory) or armored text ('-----BEGIN PGP PUBLIC KEY BLOCK-----...'). The manifest records their fingerprints.",
      ),
  })
  .strict()
  .refine(
    (e) => !(e.age?.length && e.pgp?.length),
    "give either 'age' or 'pgp' recipients, not both: each stored object has one format (use one age or one pgp list for the whole team)",
  )
  .refine((e) => Boolean(e.age?.length || e.pgp?.length), "must list 'age' or 'pgp' recipients")
  .describe(
    "Client-side encryption: the snapshot and the files archive are stored as ciphertext (age format, or an OpenPGP binary message) for these recipients, in the same streamed pass; restore, drill, verify --identity and files need one matching identity.",
  );
