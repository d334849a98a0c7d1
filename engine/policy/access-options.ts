import { z } from "zod";
import { durationSchema } from "./field-formats.js";

const cidr = z.string().regex(/^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]+)\/[0-9]{1,3}$/, "must be a CIDR block like '10.0.0.0/16' or '192.0.2.7/32'");

const mountPath = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_/-]*[A-Za-z0-9]$/, "must be an auth mount path without slashes at the ends, e.g. 'jwt'");

/** What the Pulumi `VaultBackupAccess` builds in Vault (the `vrb` CLI ignores this section). */
export const accessOptionsSchema = z
  .object({
    /** Prefix of every Vault policy and role name (default `vrb-<cluster.name>`). */
    namePrefix: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,40}$/, "must be lowercase letters, digits and '-', at most 41 characters, e.g. 'vrb-prod'")
      .optional()
      .describe("Prefix of every Vault policy and role name (default `vrb-<cluster.name>`: vrb-prod-snapshot, vrb-prod-restore)."),
    tokenRole: z
      .object({
        /** Tokens live as long as they are renewed within this period (periodic tokens). */
        period: durationSchema.default("24h").describe("Tokens live as long as they are renewed within this period (periodic tokens)."),
        /** Hard cap on a token's life even when renewed (token_explicit_max_ttl). */
        maxTtl: durationSchema.optional().describe("Hard cap on a token's life even when renewed (token_explicit_max_ttl); at least `period`."),
        boundCidrs: z.array(cidr).optional().describe("Networks the tokens may be used from."),
      })
      .strict()
      .default({})
      .describe("The token role that issues periodic, orphan snapshot tokens (snapshot policy only, no `default` policy)."),
    appRole: z
      .object({
        mount: mountPath.default("approle").describe("Path of the AppRole auth mount."),
        createMount: z.boolean().default(false).describe("true: create the auth mount as well."),
        secretIdTtl: durationSchema.default("1h").describe("Lifetime of a secret ID."),
        secretIdBoundCidrs: z.array(cidr).optional().describe("Networks a secret ID may be used from."),
        boundCidrs: z.array(cidr).optional().describe("Networks the issued tokens may be used from."),
      })
      .strict()
      .optional()
      .describe("An AppRole role with the snapshot policy, for cron jobs outside CI."),
    ci: z
      .object({
        mount: mountPath.default("jwt").describe("Path of the JWT auth mount."),
        createMount: z.boolean().default(false).describe("true: create and configure the auth mount as well."),
        issuer: z
          .string()
          .url("must be the OIDC issuer URL, e.g. https://token.actions.githubusercontent.com")
          .default("https://token.actions.githubusercontent.com")
          .describe("OIDC issuer of the CI tokens."),
        repository: z
          .string({ required_error: "is required; name the repository allowed to take snapshots, e.g. 'acme/platform'" })
          .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "must be 'owner/name', e.g. 'acme/platform'")
          .describe("The one repository whose CI may log in."),
        branch: z
          .string()
          .regex(/^[^\s*?]+$/, "must be one branch name, e.g. 'main' (no wildcards)")
          .default("main")
          .describe("The one branch whose CI runs may log in."),
        /** Expected `aud` claim (default: GitHub's, https://github.com/<owner>). */
        audience: z.string().min(1).optional().describe("Expected `aud` claim (default: GitHub's, https://github.com/<owner>)."),
      })
      .strict()
      .optional()
      .describe("A JWT role that accepts only one CI repository and branch, so CI holds no long-lived secret."),
  })
  .strict()
  .describe("What the Pulumi VaultBackupAccess builds in Vault; the vrb CLI ignores this section.");

export type AccessOptions = z.output<typeof accessOptionsSchema>;
export type AccessOptionsInput = z.input<typeof accessOptionsSchema>;
