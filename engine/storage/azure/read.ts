import { Readable } from "node:stream";
import type { BlobClient, BlobDownloadResponseParsed } from "@azure/storage-blob";
import { OperationError, VrbError } from "../../errors.js";
import type { ReadOptions } from "../object-store.js";
import { azureErrorInfo, describeAzureError, isNotFound, retryAzureCall, storeFailure } from "./errors.js";

/**
 * Streams a blob. The request is retried like a block upload; a body cut part-way is resumed where
 * it stopped with a ranged download of the same version (when the account keeps versions) or the
 * same ETag (If-Match), up to `resumes` times, so the reader sees one whole stream or an error,
 * never a mix of two blobs. The SDK's own body retries are off: these are the ones that report.
 */
export async function openBlobRead(blob: BlobClient, url: string, opts: ReadOptions = {}): Promise<{ body: Readable; bytes: number; version?: string }> {
  const { signal } = opts;
  const download = (client: BlobClient, offset: number, ifMatch?: string) =>
    retryAzureCall(() => client.download(offset, undefined, { abortSignal: signal, maxRetryRequests: 0, conditions: ifMatch ? { ifMatch } : undefined }), { signal });
  let first: BlobDownloadResponseParsed;
  try {
    first = await download(blob, 0);
  } catch (err) {
    if (isNotFound(err)) throw new OperationError(`${url} does not exist`, { cause: err });
    throw storeFailure("reading", url, err);
  }
  const bytes = first.contentLength ?? 0;
  const version = first.versionId;
  // Pin what is resumed to what was started.
  const pinned = version ? blob.withVersion(version) : blob;
  const etag = version ? undefined : first.etag;
  const maxResumes = opts.resumes ?? 5;
  async function* resumable(): AsyncGenerator<Buffer> {
    let body = first.readableStreamBody as Readable | undefined;
    let offset = 0;
    let resumes = 0;
    try {
      for (;;) {
        try {
          if (body) {
            for await (const chunk of body) {
              offset += (chunk as Buffer).length;
              yield chunk as Buffer;
            }
          }
          if (offset >= bytes) return;
          throw new Error(`the download ended after ${offset} of ${bytes} bytes`);
        } catch (err) {
          body?.destroy();
          // A cut body has no HTTP status (the SDK reports it as an AbortError of its own); an
          // abort of ours is told apart by our signal.
          const info = azureErrorInfo(err);
          if (signal?.aborted || resumes >= maxResumes || !(info.status === undefined || info.retryable)) {
            throw err instanceof VrbError ? err : storeFailure("reading", url, err);
          }
          resumes++;
          opts.onResume?.(`the download of ${url} broke after ${offset} bytes (${describeAzureError(err)}); resuming there (${resumes}/${maxResumes})`);
          try {
            body = (await download(pinned, offset, etag)).readableStreamBody as Readable | undefined;
          } catch (again) {
            // 412/404: the blob changed or went away since the first byte; a resume would splice two blobs.
            throw storeFailure(`resuming (at byte ${offset}, pinned to ${version ? `version ${version}` : `ETag ${etag}`})`, url, again);
          }
        }
      }
    } finally {
      body?.destroy();
    }
  }
  return { body: Readable.from(resumable(), { objectMode: false }), bytes, version };
}
