import type { Readable } from "node:stream";

/** Chunks waiting for the consumer before the stream is paused (socket reads: ~64 KiB each). */
const PAUSE_AT = 16;

/**
 * The chunks of a byte stream one by one, as they arrived. A Readable's own async iterator calls
 * `read()`, which joins everything buffered into one new Buffer whenever the consumer fell behind:
 * a copy of those bytes and garbage to collect (the largest avoidable cost in a backup's CPU
 * profile). Here chunks are handed on as they are; the stream is paused while PAUSE_AT wait, so
 * memory stays bounded. Ends as `for await` does: the stream's error is thrown, a close before
 * its end is an error, and leaving the loop early destroys the stream.
 */
export async function* chunksOf(stream: Readable): AsyncGenerator<Buffer, void, undefined> {
  const queue: Buffer[] = [];
  let failure: { error: unknown } | undefined;
  let ended = false;
  let wake: (() => void) | undefined;
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    if (queue.length >= PAUSE_AT) stream.pause();
    signal();
  };
  const onEnd = () => {
    ended = true;
    signal();
  };
  const onError = (error: unknown) => {
    failure ??= { error };
    signal();
  };
  const onClose = () => {
    if (!ended) failure ??= { error: Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }) };
    signal();
  };
  stream.on("data", onData);
  stream.on("end", onEnd);
  stream.on("error", onError);
  stream.on("close", onClose);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk) {
        if (queue.length === 0 && stream.isPaused() && !ended) stream.resume();
        yield chunk;
        continue;
      }
      if (failure) throw failure.error;
      if (ended) return;
      if (stream.isPaused()) stream.resume();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("error", onError);
    stream.off("close", onClose);
    if (!ended) stream.destroy();
  }
}
