import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, destinationNamed, destinationsOf, validatePolicy } from "../../engine/index.js";
import { policyFromCli } from "../../scripts/cli/options.js";

const cluster = { name: "prod", nodes: ["https://vault-0.example:8200"] };
const errorOf = (f: () => unknown): ConfigError => {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("no error");
};

describe("destinations in the policy", () => {
  it("a destination without a type is S3, as every policy written before other stores existed", () => {
    const p = validatePolicy({ cluster, destination: { bucket: "acme-vault", prefix: "vault/" } });
    expect(p.destination).toEqual({ bucket: "acme-vault", prefix: "vault/" });
    expect(destinationsOf(p)).toEqual([{ name: "primary", destination: p.destination, primary: true }]);
  });

  it("each store type takes its own fields, and a field of another store is named as unknown", () => {
    expect(validatePolicy({ cluster, destination: { type: "file", path: "/mnt/backup" } }).destination).toEqual({ type: "file", path: "/mnt/backup", prefix: "" });
    const wrong = errorOf(() => validatePolicy({ cluster, destination: { type: "file", bucket: "acme-vault" } }, "prod.yaml"));
    expect(wrong.message).toContain("destination.path");
    expect(wrong.message).toContain("'destination.bucket'");
    const relative = errorOf(() => validatePolicy({ cluster, destination: { type: "file", path: "backups" } }, "prod.yaml"));
    expect(relative.message).toBe("prod.yaml: destination.path must be an absolute directory path, e.g. /mnt/backup/vault");
  });

  it("an unknown store type names the field and the types there are", () => {
    const e = errorOf(() => validatePolicy({ cluster, destination: { type: "ftp", bucket: "x" } }, "prod.yaml"));
    expect(e.field).toBe("destination.type");
    expect(e.message).toBe("prod.yaml: destination.type must be one of s3 (the default), file, gcs, azure");
  });

  it("copies need a name each, unique among the destinations, and --destination finds them by it", () => {
    const offsite = { name: "offsite", type: "azure", accountName: "acmebackups", container: "vault-snapshots" };
    const p = validatePolicy({ cluster, destination: { bucket: "acme-vault" }, copies: [offsite] });
    expect(p.onCopyFailure).toBe("fail");
    expect(destinationNamed(p, "offsite")).toMatchObject({ name: "offsite", primary: false, destination: { type: "azure" } });
    expect(destinationNamed(p, undefined)).toMatchObject({ name: "primary", primary: true });
    expect(errorOf(() => destinationNamed(p, "tape")).message).toBe("--destination 'tape' is not a destination of this policy; it has 'primary', 'offsite'");

    const unnamed = errorOf(() => validatePolicy({ cluster, destination: { bucket: "acme-vault" }, copies: [{ type: "file", path: "/mnt/b" }] }, "prod.yaml"));
    expect(unnamed.field).toBe("copies.0.name");
    const twice = errorOf(() => validatePolicy({ cluster, destination: { bucket: "acme-vault" }, copies: [{ ...offsite, name: "primary" }] }, "prod.yaml"));
    expect(twice.message).toBe("prod.yaml: copies.0.name 'primary' is already the name of destination; give each destination its own name");
  });

  it("--bucket and VRB_BUCKET apply to bucket stores only; a directory destination is never given a bucket", () => {
    const env = { VRB_CLUSTER: "prod", VAULT_ADDR: "https://vault-0.example:8200", VRB_BUCKET: "from-env" };
    const file = join(mkdtempSync(join(tmpdir(), "vrb-dest-")), "p.yaml");
    writeFileSync(file, "destination: { type: file, path: /mnt/backup/vault }\n");
    expect(policyFromCli({ policy: file }, env).destination).toEqual({ type: "file", path: "/mnt/backup/vault", prefix: "" });
    const e = errorOf(() => policyFromCli({ policy: file, bucket: "x" }, env));
    expect(e.field).toBe("--bucket");
    expect(e.message).toBe("--bucket does not apply to a destination of type 'file': set its path in --policy");
  });
});
