import { Readable } from "node:stream";
import type { GetObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import { GetObjectCommand } from "./sdk.js";
import { OperationError } from "../../errors.js";
import type { ReadOptions } from "../object-store.js";
import { retryS3Call } from "./client.js";
import { describeS3Error, isMissingObject, s3ErrorInfo } from "./errors.js";

/**
 * Opens an object's download. The request is retried like a part upload (5xx, throttling,
 * resets: retryS3Call); a body cut part-way is resumed where it stopped with a ranged GET of the
 * same object version (or ETag), up to `resumes` times, so the reader sees one whole stream.
 */
export async function openS3Read(client: S3Client, bucket: string, key: string, opts: ReadOptions = {}): Promise<{ body: Readable; bytes: number; version?: string }> {
  const { signal } = opts;
  const where = `s3://${bucket}/${key}`;
  const get = (extra: { Range?: string; VersionId?: string; IfMatch?: string } = {}) =>
    retryS3Call(() => client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...extra }), { abortSignal: signal }), { signal });
  let first: GetObjectCommandOutput;
  try {
    first = await get();
  } catch (err) {
    if (isMissingObject(err)) throw new OperationError(`snapshot ${where} does not exist`, { cause: err });
    throw err;
  }
  const bytes = first.ContentLength ?? 0;
  // Pin what is resumed to what was started: the version when the bucket has versioning, else the ETag.
  const pin = first.VersionId && first.VersionId !== "null" ? { VersionId: first.VersionId } : first.ETag ? { IfMatch: first.ETag } : {};
  const maxResumes = opts.resumes ?? 5;
  async function* resumable(): AsyncGenerator<Buffer> {
    let body = first.Body as Readable;
    let offset = 0;
    let resumes = 0;
    try {
      for (;;) {
        try {
          for await (const chunk of body) {
            offset += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (!bytes || offset >= bytes) return;
          throw new Error(`the download ended after ${offset} of ${bytes} bytes`);
        } catch (err) {
          body.destroy();
          if (signal?.aborted || resumes >= maxResumes || !s3ErrorInfo(err).retryable) throw err;
          resumes++;
          opts.onResume?.(`the download of ${where} broke after ${offset} bytes (${describeS3Error(err)}); resuming there (${resumes}/${maxResumes})`);
          body = (await get({ Range: `bytes=${offset}-`, ...pin })).Body as Readable;
        }
      }
    } finally {
      body.destroy();
    }
  }
  return { body: Readable.from(resumable(), { objectMode: false }), bytes, version: first.VersionId };
}
