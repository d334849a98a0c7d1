import { ConfigError } from "../errors.js";
import { formatBytes, type Progress } from "../progress.js";
import { isAzureBlobHost, isAzureBlobUrl } from "./url-source.js";

/**
 * A pre-signed PUT URL takes the whole snapshot in one request, and the big clouds cap one request:
 * AWS S3 at 5 GiB, Azure Blob's Put Blob at 5000 MiB. A larger snapshot would stream for minutes
 * and then be refused. Where the URL's host says which cloud it is, the export is refused before
 * anything is sent; an S3-style URL of another host (MinIO takes up to 5 TiB in one PUT, Ceph 5 GiB
 * by default), or an Azure SAS URL of another host (a custom domain), gets a warning.
 */
export const S3_SINGLE_PUT_BYTES = 5 * 1024 ** 3;
export const AZURE_SINGLE_PUT_BYTES = 5000 * 1024 ** 2;

interface Limit {
  bytes: number;
  who: string;
  /** The URL's host is that cloud's: the limit is certain. */
  certain: boolean;
  /** Where it is not: who may take it anyway, for the warning. */
  unless?: string;
}

function limitOf(url: URL): Limit | undefined {
  const host = url.hostname.toLowerCase();
  if (/\.amazonaws\.com(\.cn)?$/.test(host)) return { bytes: S3_SINGLE_PUT_BYTES, who: "AWS S3", certain: true };
  if (isAzureBlobHost(url)) return { bytes: AZURE_SINGLE_PUT_BYTES, who: "Azure Blob", certain: true };
  if (url.searchParams.has("X-Amz-Signature"))
    return { bytes: S3_SINGLE_PUT_BYTES, who: "S3", certain: false, unless: "a store with a higher limit (MinIO) takes it, others refuse it at the end" };
  if (isAzureBlobUrl(url))
    return {
      bytes: AZURE_SINGLE_PUT_BYTES,
      who: "Azure Blob",
      certain: false,
      unless: "a custom domain in front of Azure Blob refuses it at the end too (an emulator may take it)",
    };
  return undefined;
}

/**
 * Refuses (ConfigError naming `field`) a snapshot of `bytes` that the URL's cloud cannot take in
 * one PUT; warns where the URL is S3-style or an Azure SAS but its host is not the cloud's. `url` was checked by checkUrl.
 */
export function checkSinglePutSize(bytes: number, url: string, field: string, progress: Progress): void {
  const limit = limitOf(new URL(url));
  if (!limit || bytes <= limit.bytes) return;
  const what = `the snapshot is ${formatBytes(bytes)}, and ${limit.who} takes at most ${formatBytes(limit.bytes)} in one PUT`;
  const instead =
    "hand it over with GET URLs instead (vrb presign on this side; the other side restores or copies from them), or copy it with the store's own multipart tool (aws s3 cp, azcopy)";
  if (limit.certain) throw new ConfigError(`${field}: ${what}; nothing was sent. ${instead}`, { field });
  progress.warn(`${field}: ${what}; ${limit.unless}. If it is refused: ${instead}`);
}
