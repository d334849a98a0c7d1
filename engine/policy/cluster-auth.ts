import { z } from "zod";

const authMount = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_/-]*[A-Za-z0-9]$|^[A-Za-z0-9]$/, "must be an auth mount path without slashes at the ends, e.g. 'approle'");
const filePath = z.string().min(1, "must be a file path");

/** The login methods `cluster.auth.method` accepts (engine/vault/login-methods.ts builds the login of each). */
export const AUTH_METHODS = ["token", "approle", "jwt", "kubernetes", "cert"] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** How the kit gets a Vault token (docs/auth.md). Only file paths and names here: the secrets stay in files or the environment. */
export const authSchema = z
  .object({
    method: z
      .enum(AUTH_METHODS, { errorMap: () => ({ message: `must be one of ${AUTH_METHODS.join(", ")}` }) })
      .default("token")
      .describe(
        "How to get a token. token: VAULT_TOKEN / BAO_TOKEN, then `tokenFile`, then ~/.vault-token (never revoked). approle, jwt, kubernetes, cert: log in; the token is renewed while the command runs and revoked when it ends.",
      ),
    mount: authMount.optional().describe("Path of the auth mount (default: the method's name: approle, jwt, kubernetes, cert)."),
    role: z.string().min(1).optional().describe("Role to log in as: required for jwt and kubernetes; for cert, the certificate role (default: any role whose CA matches)."),
    roleIdFile: filePath.optional().describe("approle: file holding the role ID (default: VAULT_ROLE_ID)."),
    secretIdFile: filePath.optional().describe("approle: file holding the secret ID, or a response-wrapping token for it, which is unwrapped (default: VAULT_SECRET_ID)."),
    jwtFile: filePath
      .optional()
      .describe("jwt: file holding the JWT (default: VRB_JWT); kubernetes: the service account token (default /var/run/secrets/kubernetes.io/serviceaccount/token)."),
    tokenFile: filePath.optional().describe("token: file holding a token, e.g. a Vault Agent sink; used when VAULT_TOKEN and BAO_TOKEN are unset."),
  })
  .strict()
  .superRefine((a, ctx) => {
    const only = (field: keyof typeof a, methods: AuthMethod[]) => {
      if (a[field] !== undefined && !methods.includes(a.method)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [field], message: `applies to method ${methods.join(" or ")} only, not ${a.method}; remove it or set method` });
      }
    };
    only("roleIdFile", ["approle"]);
    only("secretIdFile", ["approle"]);
    only("jwtFile", ["jwt", "kubernetes"]);
    only("tokenFile", ["token"]);
    only("role", ["jwt", "kubernetes", "cert"]);
    only("mount", ["approle", "jwt", "kubernetes", "cert"]);
    if ((a.method === "jwt" || a.method === "kubernetes") && a.role === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["role"], message: `is required for method ${a.method}: the role to log in as` });
    }
  })
  .describe("How the kit logs in to Vault (docs/auth.md). Default: a token from VAULT_TOKEN, BAO_TOKEN or ~/.vault-token.");

export type AuthSettings = z.output<typeof authSchema>;
