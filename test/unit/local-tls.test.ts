import { describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import { createLocalCa, issueNodeCertificate } from "../../engine/throwaway/tls.js";
import { tempDir } from "../support/env.js";

describe("local TLS material (private CA, node certificates)", () => {
  it("issues a node certificate for 127.0.0.1 and localhost, signed by the CA, with private keys 0600", () => {
    const dir = tempDir("tls-unit");
    const ca = createLocalCa(dir);
    const files = issueNodeCertificate(ca, join(dir, "node-1"), "node-1");
    const caCert = new X509Certificate(readFileSync(ca.caCertPath));
    const cert = new X509Certificate(readFileSync(files.certFile));
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(files.caFile).toBe(ca.caCertPath);
    for (const key of [ca.caKeyPath, files.keyFile]) expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "tls")).mode & 0o777).toBe(0o700);
  });
});
