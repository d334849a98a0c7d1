import { z } from "zod";
import { authSchema } from "./cluster-auth.js";
import { nodeUrlSchema } from "./field-formats.js";

const clusterName = z
  .string({ required_error: "is required; set the cluster's name, e.g. 'prod'" })
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and '-', at most 63 characters (it is part of every object key), e.g. 'prod'");

/** The cluster whose snapshots these are: its name, its nodes, their TLS, and how to log in. */
export const clusterSchema = z
  .object(
    {
      name: clusterName.describe("Name of the cluster: part of every object key and manifest; `vrb list`, `vrb restore latest` and the Pulumi resources find snapshots by it."),
      nodes: z
        .array(nodeUrlSchema, { required_error: "is required; list every node's API address" })
        .min(1, "must list at least one node address")
        .describe("API address of every node (scheme, host, port; no path). A backup asks them which one is active and streams the snapshot from that one."),
      caCert: z
        .string()
        .min(1)
        .optional()
        .describe("CA certificate that signs the nodes' TLS certificates: PEM text or a file path (default: VAULT_CACERT). Needs https:// node addresses."),
      tlsServerName: z
        .string()
        .min(1)
        .optional()
        .describe("Name to check in the nodes' certificates when it differs from the host in the address (default: VAULT_TLS_SERVER_NAME)."),
      clientCert: z
        .string()
        .min(1)
        .optional()
        .describe("Client certificate (PEM file path) for listeners that require mTLS, and for the cert login method (default: VAULT_CLIENT_CERT)."),
      clientKey: z.string().min(1).optional().describe("Private key (PEM file path) of `clientCert` (default: VAULT_CLIENT_KEY)."),
      auth: authSchema.default({}),
    },
    { required_error: "is required: { name, nodes: [https://vault-0:8200, ...] }" },
  )
  .strict()
  .describe("The cluster whose snapshots these are.");
