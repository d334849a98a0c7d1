/** How long a backup or a re-download may move no byte before it is aborted (`--stall-timeout`). */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/**
 * Fires `onStall` when `touch()` has not been called for `timeoutMs`. Stream bodies have no
 * timeout of their own, so this is what turns a hung node or S3 server into a clear error.
 */

export class StallWatchdog {
  private last = Date.now();
  private timer?: NodeJS.Timeout;
  constructor(
    private readonly timeoutMs: number,
    private readonly onStall: (idleMs: number) => void,
  ) {}
  start(): this {
    this.last = Date.now();
    this.timer = setInterval(
      () => {
        const idle = Date.now() - this.last;
        if (idle >= this.timeoutMs) {
          this.stop();
          this.onStall(idle);
        }
      },
      Math.min(1_000, Math.max(50, this.timeoutMs / 4)),
    );
    this.timer.unref();
    return this;
  }
  touch(): void {
    this.last = Date.now();
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
