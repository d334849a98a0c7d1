import { describe, expect, it } from "vitest";
import { configErrorOf } from "../support/config-error.js";
import { ConfigError, scheduleWindow, validatePolicy, parseDuration } from "../../engine/index.js";
import { parsePolicyText } from "../../engine/policy.js";

const good = {
  cluster: { name: "prod", nodes: ["https://vault-0:8200", "https://vault-1:8200"] },
  destination: { bucket: "acme-vault-snapshots", prefix: "vault/", region: "eu-west-1" },
  retention: { keepLast: 10, maxAgeDays: 35 },
  objectLock: { mode: "COMPLIANCE", days: 30 },
  schedule: { every: "6h" },
  verify: { canaries: ["secret/data/dr-canary"] },
};

function errorOf(input: unknown): ConfigError {
  return configErrorOf(() => validatePolicy(input));
}

describe("backup policy validation", () => {
  it("accepts the documented schema and fills safe defaults", () => {
    const p = validatePolicy({ cluster: good.cluster, destination: { bucket: "b-1x" } });
    expect(p.destination.prefix).toBe("");
    expect(p.retention).toEqual({ keepLast: 30 });
    expect(p.schedule.every).toBe("6h");
    expect(validatePolicy(good).objectLock).toEqual({ mode: "COMPLIANCE", days: 30 });
  });

  it("names the field and the fix for each kind of mistake", () => {
    const cases: [unknown, string, RegExp][] = [
      [{ ...good, destination: { bucket: "Bad_Bucket" } }, "destination.bucket", /valid S3 bucket name/],
      [{ ...good, cluster: { name: "prod", nodes: ["vault-0:8200"] } }, "cluster.nodes.0", /API address like https:/],
      [{ ...good, objectLock: { mode: "STRICT", days: 3 } }, "objectLock.mode", /GOVERNANCE or COMPLIANCE/],
      [{ ...good, schedule: { every: "soon" } }, "schedule.every", /duration/],
      [{ ...good, retention: { keepLast: 0 } }, "retention.keepLast", /at least 1/],
      [{ ...good, destination: { ...good.destination, prefix: "/abs" } }, "destination.prefix", /ending in '\/'/],
      [{ destination: good.destination }, "cluster", /is required/],
      [{ ...good, retention: { keepLats: 3 } }, "retention.keepLats", /unknown field 'retention.keepLats'/],
    ];
    for (const [input, field, re] of cases) {
      const err = errorOf(input);
      expect(err.field, JSON.stringify(input)).toBe(field);
      expect(err.message).toMatch(re);
      expect(err.exitCode).toBe(2);
    }
  });

  it("reports YAML syntax errors with the file name", () => {
    expect(() => parsePolicyText("cluster: [unclosed", "prod.yaml")).toThrow(/prod.yaml: not valid YAML/);
  });

  it("aligns schedule windows to the epoch so every run agrees on them", () => {
    expect(parseDuration("1h30m")).toBe(5_400_000);
    const a = scheduleWindow("6h", new Date("2026-11-21T13:59:59Z"));
    const b = scheduleWindow("6h", new Date("2026-11-21T12:00:00Z"));
    const c = scheduleWindow("6h", new Date("2026-11-21T18:00:00Z"));
    expect(a.id).toBe("2026-11-21T12:00:00Z");
    expect(b.id).toBe(a.id);
    expect(c.id).not.toBe(a.id);
  });
});
