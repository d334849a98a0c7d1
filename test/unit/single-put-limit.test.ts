import { describe, expect, it } from "vitest";
import { configErrorOf } from "../support/config-error.js";
import { ConfigError } from "../../engine/errors.js";
import { AZURE_SINGLE_PUT_BYTES, checkSinglePutSize, S3_SINGLE_PUT_BYTES } from "../../engine/catalogue/single-put-limit.js";
import { putHeaders } from "../../engine/catalogue/url-source.js";
import type { Progress } from "../../engine/progress.js";

// `vrb export --to-url` sends the whole snapshot in one PUT: a snapshot larger than the URL's cloud
// takes in one request is refused before anything is sent (or, where the cloud is not certain, warned of).
const GiB = 1024 ** 3;
const AWS_URL = "https://acme-dr.s3.eu-west-1.amazonaws.com/vault/prod.snap?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc";
const AZURE_URL = "https://acmedr.blob.core.windows.net/snapshots/prod.snap?sv=2024-08-04&sr=b&sp=cw&sig=abc";
const MINIO_URL = "https://minio.dr.example:9000/snapshots/prod.snap?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc";
const AZURE_CUSTOM_DOMAIN_URL = "https://backups.acme.example/snapshots/prod.snap?sv=2024-08-04&sr=b&sp=cw&sig=abc";
const GCS_URL = "https://storage.googleapis.com/acme-dr/prod.snap?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=abc";

function recorder(): Progress & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, warn: (m) => warnings.push(m) };
}

function refusal(bytes: number, url: string): ConfigError {
  return configErrorOf(() => checkSinglePutSize(bytes, url, "--to-url", recorder()));
}

describe("export to a pre-signed PUT URL: the size one PUT takes", () => {
  it("AWS S3: over 5 GiB is refused naming --to-url, the limit and what to do instead; 5 GiB passes", () => {
    const err = refusal(6 * GiB, AWS_URL);
    expect(err.field).toBe("--to-url");
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/the snapshot is 6(\.0)? GiB, and AWS S3 takes at most 5(\.0)? GiB in one PUT; nothing was sent/);
    expect(err.message).toMatch(/vrb presign/);
    const p = recorder();
    checkSinglePutSize(S3_SINGLE_PUT_BYTES, AWS_URL, "--to-url", p);
    expect(p.warnings).toEqual([]);
  });

  it("Azure Blob: over 5000 MiB is refused", () => {
    expect(refusal(AZURE_SINGLE_PUT_BYTES + 1, AZURE_URL).message).toMatch(/Azure Blob takes at most/);
    checkSinglePutSize(AZURE_SINGLE_PUT_BYTES, AZURE_URL, "--to-url", recorder());
  });

  it("an S3-style URL of another host (MinIO takes more) is warned of, not refused; a Cloud Storage URL (5 TiB) neither", () => {
    const p = recorder();
    checkSinglePutSize(6 * GiB, MINIO_URL, "--to-url", p);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/S3 takes at most 5(\.0)? GiB in one PUT; a store with a higher limit \(MinIO\) takes it/);
    const g = recorder();
    checkSinglePutSize(6 * GiB, GCS_URL, "--to-url", g);
    expect(g.warnings).toEqual([]);
  });

  it("an Azure SAS URL of another host (a custom domain) is warned of with Azure's limit, not refused", () => {
    const p = recorder();
    checkSinglePutSize(AZURE_SINGLE_PUT_BYTES + 1, AZURE_CUSTOM_DOMAIN_URL, "--to-url", p);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/Azure Blob takes at most .* in one PUT; a custom domain in front of Azure Blob refuses it at the end too/);
  });
});

describe("export to a pre-signed PUT URL: the request's headers", () => {
  it("an Azure URL (its host or a SAS) gets the blob type Put Blob requires; S3 and Cloud Storage URLs the plain PUT", () => {
    for (const url of [AZURE_URL, AZURE_CUSTOM_DOMAIN_URL]) expect(putHeaders(url, "application/gzip", 42)["x-ms-blob-type"]).toBe("BlockBlob");
    for (const url of [AWS_URL, MINIO_URL, GCS_URL]) expect(putHeaders(url, "application/gzip", 42)).toEqual({ "content-type": "application/gzip", "content-length": "42" });
  });
});
