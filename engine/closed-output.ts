// What a process does when the reader of its stdout or stderr goes away. Node built-ins only: the
// CLI's launcher loads this before anything else (scripts/cli/launch.ts).

/**
 * Calls `whenClosed` when a write to one of `streams` meets a closed pipe (EPIPE: its reader is
 * gone), and again for every write after it (ERR_STREAM_DESTROYED). Without a listener, Node
 * turns that error into an uncaught exception that ends the process wherever it is. Any other
 * stream error is thrown, as it would be without the listener.
 */
export function onClosedOutput(whenClosed: () => void, streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE" && err.code !== "ERR_STREAM_DESTROYED") throw err;
      whenClosed();
    });
  }
}
