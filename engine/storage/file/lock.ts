import { open, stat, unlink } from "node:fs/promises";
import { OperationError } from "../../errors.js";
import { errnoOf } from "./fs-errors.js";

// A writer's lock on one file: a lock file created with O_EXCL (atomic on local file systems and
// on NFSv3 and later). Conditional writes compare the etag and rename while holding it, so a
// compare-and-swap cannot interleave with another. Holders keep it for milliseconds. One left by a
// crashed writer is taken over once this process has seen the same lock file (inode and mtime)
// unchanged for `staleMs` by its own clock: the file's mtime is the NFS server's clock, which may
// be far from ours.

export interface LockOptions {
  /** A lock file seen unchanged this long was left by a crashed writer (default 30 s). */
  staleMs?: number;
  /** Give up waiting after this long (default: staleMs + 5 s). */
  waitMs?: number;
  signal?: AbortSignal;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function withFileLock<T>(lockPath: string, run: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = Date.now() + (opts.waitMs ?? staleMs + 5_000);
  let seen: { id: string; since: number } | undefined;
  for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
    opts.signal?.throwIfAborted();
    try {
      const fh = await open(lockPath, "wx");
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw err;
    }
    const held = await stat(lockPath, { bigint: true }).catch(() => undefined);
    if (held) {
      const id = `${held.ino}-${held.mtimeNs}`;
      if (seen?.id !== id) seen = { id, since: Date.now() };
      else if (Date.now() - seen.since >= staleMs) {
        await unlink(lockPath).catch(() => undefined);
        seen = undefined;
        continue;
      }
    }
    if (Date.now() > deadline) throw new OperationError(`another writer holds ${lockPath}; if no vrb process is writing, remove that file`);
    await sleep(delay * (0.5 + Math.random()));
  }
  try {
    return await run();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}
