import { VaultHttpError, type VaultClient } from "../vault/client.js";
import { registerValues } from "./values.js";

/** One KV v2 secret as the snapshot holds it: every readable version in order, and its metadata. */
export interface Kv2Secret {
  /** Versions that still had data in the snapshot (deleted or destroyed ones cannot come back), oldest first. */
  versions: { version: number; data: Record<string, unknown> }[];
  customMetadata: Record<string, string>;
  settings: { max_versions?: number; cas_required?: boolean; delete_version_after?: string };
}

/** The live side of one KV v2 secret. */
export interface Kv2Live {
  exists: boolean;
  currentVersion: number;
  /** Data of the current version; undefined when it is deleted or destroyed. */
  current?: Record<string, unknown>;
  customMetadata: Record<string, string>;
}

interface Kv2Metadata {
  current_version: number;
  custom_metadata: Record<string, string> | null;
  versions: Record<string, { deletion_time: string; destroyed: boolean }>;
  max_versions?: number;
  cas_required?: boolean;
  delete_version_after?: string;
}

const enc = (path: string) => path.split("/").map(encodeURIComponent).join("/");

async function getOrUndefined<T>(client: VaultClient, path: string, query?: Record<string, string | number>): Promise<T | undefined> {
  try {
    return (await client.get<T>(path, { query })).body;
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 404) return undefined;
    throw err;
  }
}

async function kv2Metadata(client: VaultClient, mount: string, path: string): Promise<Kv2Metadata | undefined> {
  return (await getOrUndefined<{ data: Kv2Metadata }>(client, `${mount}/metadata/${enc(path)}`))?.data;
}

async function kv2Version(client: VaultClient, mount: string, path: string, version: number): Promise<Record<string, unknown> | undefined> {
  const body = await getOrUndefined<{ data: { data: Record<string, unknown> | null } }>(client, `${mount}/data/${enc(path)}`, { version });
  const data = body?.data.data ?? undefined;
  registerValues(data);
  return data;
}

/** A KV v2 secret of the snapshot (read from the throwaway cluster); undefined when it is not there. */
export async function readKv2Secret(client: VaultClient, mount: string, path: string): Promise<Kv2Secret | undefined> {
  const meta = await kv2Metadata(client, mount, path);
  if (!meta) return undefined;
  const numbers = Object.entries(meta.versions ?? {})
    .filter(([, v]) => !v.destroyed && !v.deletion_time)
    .map(([n]) => Number(n))
    .sort((a, b) => a - b);
  const versions: Kv2Secret["versions"] = [];
  for (const version of numbers) {
    const data = await kv2Version(client, mount, path, version);
    if (data) versions.push({ version, data });
  }
  registerValues(meta.custom_metadata);
  return {
    versions,
    customMetadata: meta.custom_metadata ?? {},
    settings: { max_versions: meta.max_versions, cas_required: meta.cas_required, delete_version_after: meta.delete_version_after },
  };
}

export async function readKv2Live(client: VaultClient, mount: string, path: string): Promise<Kv2Live> {
  const meta = await kv2Metadata(client, mount, path);
  if (!meta) return { exists: false, currentVersion: 0, customMetadata: {} };
  const v = meta.versions?.[String(meta.current_version)];
  const current = v && !v.destroyed && !v.deletion_time ? await kv2Version(client, mount, path, meta.current_version) : undefined;
  return { exists: true, currentVersion: meta.current_version, current, customMetadata: meta.custom_metadata ?? {} };
}

/**
 * Writes `versions` as new versions, oldest first. Check-and-set on each write: if someone else
 * writes the secret meanwhile, the recovery stops instead of burying their write.
 */
export async function writeKv2Versions(client: VaultClient, mount: string, path: string, versions: Record<string, unknown>[], after: number): Promise<number> {
  let cas = after;
  for (const data of versions) {
    const res = await client.post<{ data: { version: number } }>(`${mount}/data/${enc(path)}`, { data, options: { cas } });
    cas = res.body.data.version;
  }
  return versions.length;
}

/** Sets custom metadata (and, for a secret re-created from nothing, its version settings). */
export async function writeKv2Metadata(client: VaultClient, mount: string, path: string, body: Record<string, unknown>): Promise<void> {
  await client.post(`${mount}/metadata/${enc(path)}`, body);
}

export async function readKv1(client: VaultClient, mount: string, path: string): Promise<Record<string, unknown> | undefined> {
  const data = (await getOrUndefined<{ data: Record<string, unknown> }>(client, `${mount}/${enc(path)}`))?.data;
  registerValues(data);
  return data;
}

export async function writeKv1(client: VaultClient, mount: string, path: string, data: Record<string, unknown>): Promise<void> {
  await client.post(`${mount}/${enc(path)}`, data);
}

/** The HCL of an ACL policy; undefined when there is none of that name. */
export async function readAclPolicy(client: VaultClient, name: string): Promise<string | undefined> {
  const body = await getOrUndefined<{ data?: { policy?: string }; policy?: string }>(client, `sys/policies/acl/${enc(name)}`);
  return body?.data?.policy ?? body?.policy;
}

export async function writeAclPolicy(client: VaultClient, name: string, policy: string): Promise<void> {
  await client.put(`sys/policies/acl/${enc(name)}`, { policy });
}
