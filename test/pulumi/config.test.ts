import { describe, expect, it } from "vitest";
import { ConfigError } from "../../engine/index.js";
import { manageMode, windowConfig } from "../../stacks/backup/config.js";

// The backup stack's two settings for running without the AWS and Vault providers: checked before
// anything registers, each error naming its field (the real-engine runs are in vault-snapshot.test.ts).
describe("backup stack config: manage and window", () => {
  it("manage: all by default, snapshotsOnly on request", () => {
    expect(manageMode(undefined, {}, true)).toBe("all");
    expect(manageMode("all", {}, true)).toBe("all");
    expect(manageMode("snapshotsOnly", { bucket: { create: false } }, true)).toBe("snapshotsOnly");
    expect(manageMode("snapshotsOnly", {}, true)).toBe("snapshotsOnly");
  });

  it("manage: a wrong value, nothing to manage, or a bucket to create fail naming the field", () => {
    const fieldOf = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return { field: (err as ConfigError).field, message: (err as Error).message };
      }
      throw new Error("did not fail");
    };
    expect(fieldOf(() => manageMode("snapshots", {}, true))).toEqual({
      field: "manage",
      message: expect.stringMatching(/vault-raft-backup:manage must be 'all' .* or 'snapshotsOnly' .*, not 'snapshots'/),
    });
    expect(fieldOf(() => manageMode("snapshotsOnly", {}, false)).field).toBe("takeSnapshot");
    expect(fieldOf(() => manageMode("snapshotsOnly", { bucket: { create: true } }, true))).toEqual({
      field: "policy.bucket.create",
      message: expect.stringMatching(/creates no bucket: set the policy's bucket.create to false/),
    });
  });

  it("window: a window id, or a clear error (e.g. the YAML timestamp Pulumi's parser makes of an unquoted id)", () => {
    expect(windowConfig(undefined)).toBeUndefined();
    expect(windowConfig("2024-05-01T06:00:00Z")).toBe("2024-05-01T06:00:00Z");
    expect(() => windowConfig("2024-05-01 06:00:00 +0000 UTC")).toThrow(/vault-raft-backup:window must be a schedule window id like '2024-05-01T06:00:00Z'.*quote it/);
  });
});
