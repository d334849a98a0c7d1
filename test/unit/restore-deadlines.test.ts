import { describe, expect, it } from "vitest";
import { SIZED_BASE_MS, SIZED_BYTES_PER_SEC, sizedStepMs, sizedTotalMs, Deadlines } from "../../engine/restore/deadlines.js";
import { StepLog } from "../../engine/restore/steps.js";
import { uploadCut } from "../../engine/restore/snapshot-upload.js";
import { OperationError } from "../../engine/index.js";
import { VaultHttpError } from "../../engine/vault/client.js";

const GiB = 1024 ** 3;

describe("size-derived restore deadlines", () => {
  it("grow with the snapshot: base plus the size at a conservative rate", () => {
    expect(sizedStepMs(0)).toBe(SIZED_BASE_MS);
    expect(sizedStepMs(10 * 1024 * 1024)).toBe(SIZED_BASE_MS + 5_000);
    // The 1.34 GiB snapshot a joining node took minutes to install gets far more than the old fixed 120 s.
    expect(sizedStepMs(1.34 * GiB)).toBeGreaterThan(10 * 60_000);
    expect(sizedStepMs(GiB)).toBe(SIZED_BASE_MS + Math.ceil((GiB / SIZED_BYTES_PER_SEC) * 1000));
    // The whole restore: one sized wait per node on top of the default.
    expect(sizedTotalMs(30 * 60_000, GiB, 3)).toBe(30 * 60_000 + 3 * (sizedStepMs(GiB) - SIZED_BASE_MS));
  });

  it("apply to the sized waits only, and not at all when the step deadline was set explicitly (--step-timeout)", () => {
    const d = new Deadlines(120_000, 30 * 60_000);
    expect(d.forStep("before the size is known", true)).toBe(120_000);
    d.sizeTo(GiB, 3);
    expect(d.forStep("join node 2", true)).toBe(sizedStepMs(GiB));
    expect(d.forStep("check target nodes")).toBe(120_000);
    expect(d.totalMs).toBe(sizedTotalMs(30 * 60_000, GiB, 3));
    // Sizing twice does not grow the total twice.
    d.sizeTo(GiB, 3);
    expect(d.totalMs).toBe(sizedTotalMs(30 * 60_000, GiB, 3));

    const explicit = new Deadlines(900_000, 30 * 60_000, { step: true });
    explicit.sizeTo(GiB, 3);
    expect(explicit.forStep("join node 2", true)).toBe(900_000);
    expect(explicit.forStep("check target nodes")).toBe(900_000);

    const fixedTotal = new Deadlines(120_000, 60_000, { total: true });
    fixedTotal.sizeTo(GiB, 3);
    // Never more than what is left of an explicit total.
    expect(fixedTotal.forStep("join node 2", true)).toBeLessThanOrEqual(60_000);
  });

  it("a small snapshot keeps the usual step deadline", () => {
    const d = new Deadlines(120_000, 30 * 60_000);
    d.sizeTo(1024, 3);
    expect(d.forStep("join node 2", true)).toBe(sizedStepMs(1024));
    expect(sizedStepMs(1024)).toBeLessThan(121_000);
  });

  it("a step log hands the sized deadline only to steps marked sized", async () => {
    const log = new StepLog(new Deadlines(120_000, 30 * 60_000));
    log.deadlines.sizeTo(GiB, 3);
    expect(await log.run("join node 2 to node 1", "n2", async (c) => c.timeoutMs(), { sized: true })).toBe(sizedStepMs(GiB));
    expect(await log.run("check seals", undefined, async (c) => c.timeoutMs())).toBe(120_000);
  });
});

describe("restore upload cut by the server", () => {
  it("is told apart from other failures", () => {
    const readTimeout = new VaultHttpError("http://n1", "POST", "/v1/sys/storage/raft/snapshot-force", 500, [
      "1 error occurred:\n\t* failed to read snapshot file: failed to read or write snapshot data: read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout\n\n",
    ]);
    expect(uploadCut(readTimeout, 10, 100)).toBe("read-timeout");
    const reset = new OperationError("cannot reach http://n1 (POST /v1/sys/storage/raft/snapshot-force): ECONNRESET", {
      cause: Object.assign(new Error("x"), { code: "ECONNRESET" }),
    });
    expect(uploadCut(reset, 10, 100)).toBe("connection-closed");
    // Everything was sent: a reset then is not a cut upload (the server died applying it, say).
    expect(uploadCut(reset, 100, 100)).toBeUndefined();
    expect(uploadCut(new VaultHttpError("http://n1", "POST", "/v1/sys/storage/raft/snapshot-force", 403, ["permission denied"]), 10, 100)).toBeUndefined();
    expect(uploadCut(new Error("ECONNRESET"), 10, 100)).toBeUndefined();
  });
});
