import { describe, expect, it } from "vitest";
import { recoveryPointStatus, type StoredSnapshot } from "../../engine/index.js";

const snap = (takenAt: string, status: StoredSnapshot["status"] = "good"): StoredSnapshot => ({
  bucket: "b",
  key: `prod/prod-${takenAt}.snap`,
  url: `s3://b/prod/prod-${takenAt}.snap`,
  cluster: "prod",
  takenAt: new Date(takenAt),
  raftIndex: 1,
  bytes: 1,
  status,
});

describe("recovery point check (schedule.every)", () => {
  const now = new Date("2026-11-21T13:00:00Z"); // current 6h window: 12:00-18:00, previous: 06:00-12:00

  it("is met while the newest good snapshot lies in the current or the previous window", () => {
    expect(recoveryPointStatus([snap("2026-11-21T12:30:00Z")], "6h", now).ok).toBe(true);
    // Taken at the very start of the previous window: still one snapshot per window.
    const early = recoveryPointStatus([snap("2026-11-21T06:00:00Z")], "6h", now);
    expect(early.ok).toBe(true);
    expect(early.ageSeconds).toBe(7 * 3600);
  });

  it("is missed when a whole window passed without a good snapshot, and says so", () => {
    const missed = recoveryPointStatus([snap("2026-11-21T05:59:59Z")], "6h", now);
    expect(missed.ok).toBe(false);
    expect(missed.message).toMatch(/at least one 6h window passed without a good snapshot/);
    expect(missed.oldestAcceptable).toBe("2026-11-21T06:00:00.000Z");
  });

  it("counts only good snapshots: a newer incomplete one does not hide a missed schedule", () => {
    const r = recoveryPointStatus([snap("2026-11-21T12:55:00Z", "incomplete"), snap("2026-11-20T23:00:00Z")], "6h", now);
    expect(r.ok).toBe(false);
    expect(r.newestGood?.takenAt).toBe("2026-11-20T23:00:00.000Z");
    expect(recoveryPointStatus([], "6h", now)).toMatchObject({ ok: false, message: expect.stringMatching(/no good snapshot/) });
  });
});
