import { EventEmitter } from "node:events";
import { Readable } from "node:stream";
import type { File } from "@google-cloud/storage";
import { OperationError } from "../../errors.js";
import { describeGcsError, gcsErrorInfo } from "./client.js";

export interface ResumingReadOptions {
  /** The object pinned to the generation first read. */
  file: File;
  bytes: number;
  url: string;
  signal?: AbortSignal;
  resumes: number;
  onResume?: (message: string) => void;
}

/** An answer another request cannot change (the generation is gone, access refused). */
function isFinal(err: unknown): boolean {
  const { status } = gcsErrorInfo(err);
  return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/**
 * The client's own layers (node-fetch, teeny-request, the storage client's pipeline) put 11
 * 'error' and 11 'close' listeners on every response body: a fixed number, not a leak, but one
 * over Node's default of 10, so each read printed "MaxListenersExceededWarning: Possible
 * EventEmitter memory leak detected" on the operator's terminal. The body is handed to the
 * 'response' listeners before the client adds the last six, so the limit is raised there, with
 * room for a leak to still show.
 */
function allowSdkListeners(body: unknown): void {
  if (body instanceof EventEmitter) body.setMaxListeners(Math.max(body.getMaxListeners(), 20));
}

/**
 * The object's body from byte `start`, chunk by chunk, with the SDK's validation off: a ranged read
 * cannot be checked against the whole object's CRC32C; the callers check what they read (the
 * snapshot's SHA-256 against its manifest; a manifest's own fields). `signal` cancels the request.
 */
async function* bodyFrom(file: File, start: number, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const source = file.createReadStream({ start, validation: false });
  source.once("response", allowSdkListeners);
  const stop = () => source.destroy(new Error("the read was cancelled"));
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const chunk of source) yield chunk as Buffer;
  } finally {
    signal?.removeEventListener("abort", stop);
    source.destroy();
  }
}

/**
 * A small object's bytes whole, in one request. The SDK's own download() stacks the same listeners
 * on a body of 16 KiB or more, and has no hook to raise the limit, so it is not used.
 */
export async function readWhole(file: File, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of bodyFrom(file, 0, signal)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * The object's bytes as one stream: a body cut part-way is asked for again from the byte where it
 * stopped, of the same generation (a newer write to the key never mixes in), up to `resumes` times.
 */
export function resumingRead(opts: ResumingReadOptions): Readable {
  const { file, bytes, url, signal } = opts;
  async function* body(): AsyncGenerator<Buffer> {
    let offset = 0;
    let resumed = 0;
    for (;;) {
      try {
        for await (const chunk of bodyFrom(file, offset, signal)) {
          offset += chunk.length;
          yield chunk;
        }
        if (offset >= bytes) return;
        throw new Error(`the body ended at byte ${offset} of ${bytes}`);
      } catch (err) {
        if (signal?.aborted || isFinal(err) || resumed >= opts.resumes) {
          throw new OperationError(`reading ${url} failed at byte ${offset} of ${bytes}${resumed ? ` after ${resumed} resumes` : ""}: ${describeGcsError(err)}`, {
            stage: "download",
            cause: err,
          });
        }
        resumed++;
        opts.onResume?.(`the download of ${url} was cut at byte ${offset} of ${bytes} (${describeGcsError(err)}); resuming from there (resume ${resumed} of ${opts.resumes})`);
      }
    }
  }
  return Readable.from(body(), { objectMode: false, highWaterMark: 1 << 20 });
}
