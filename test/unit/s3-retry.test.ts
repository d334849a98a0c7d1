import { describe, expect, it } from "vitest";

import { retryS3Call } from "../../engine/storage/s3/client.js";
import { retryBackoffMs } from "../../engine/backup/backup.js";
import { describeS3Error, s3ErrorInfo } from "../../engine/storage/s3/errors.js";

function s3Error(code: string, status: number): Error {
  return Object.assign(new Error(`injected ${code}`), { name: code, Code: code, $metadata: { httpStatusCode: status } });
}

describe("retryS3Call", () => {
  it("retries 5xx and throttling, then succeeds", async () => {
    const errors = [s3Error("SlowDown", 503), s3Error("InternalError", 500)];
    const delays: number[] = [];
    let calls = 0;
    const r = await retryS3Call(
      async () => {
        calls++;
        const e = errors.shift();
        if (e) throw e;
        return "ok";
      },
      { baseDelayMs: 1, onRetry: (_e, _round, d) => delays.push(d), random: () => 1 },
    );
    expect(r).toBe("ok");
    expect(calls).toBe(3);
    // Throttling backs off 4x longer than a plain 5xx.
    expect(delays).toEqual([4, 2]);
  });

  it("gives up after `attempts` rounds with the last error, and never retries a 4xx", async () => {
    let calls = 0;
    const slow = retryS3Call(
      async () => {
        calls++;
        throw s3Error("SlowDown", 503);
      },
      { attempts: 3, baseDelayMs: 1 },
    );
    await expect(slow).rejects.toMatchObject({ name: "SlowDown" });
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      retryS3Call(
        async () => {
          calls++;
          throw s3Error("AccessDenied", 403);
        },
        { baseDelayMs: 1 },
      ),
    ).rejects.toMatchObject({ name: "AccessDenied" });
    expect(calls).toBe(1);
  });

  it("stops waiting when aborted", async () => {
    const ac = new AbortController();
    const p = retryS3Call(
      async () => {
        throw s3Error("SlowDown", 503);
      },
      { baseDelayMs: 60_000, signal: ac.signal },
    );
    setTimeout(() => ac.abort(new Error("cancelled")), 10);
    await expect(p).rejects.toThrow("cancelled");
  });

  it("names the S3 error code", () => {
    expect(s3ErrorInfo(s3Error("SlowDown", 503))).toMatchObject({ code: "SlowDown", status: 503, throttling: true, retryable: true });
    expect(describeS3Error(s3Error("InternalError", 500))).toBe("InternalError (HTTP 500): injected InternalError");
    expect(s3ErrorInfo(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })).retryable).toBe(true);
  });
});

describe("retryBackoffMs", () => {
  it("doubles from 1 s with ±50 % jitter, capped at 30 s", () => {
    expect(retryBackoffMs(1, () => 0)).toBe(500);
    expect(retryBackoffMs(1, () => 0.999999)).toBe(1500);
    expect(retryBackoffMs(3, () => 0.5)).toBe(4000);
    expect(retryBackoffMs(10, () => 0.5)).toBe(30000);
  });
});
