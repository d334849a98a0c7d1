import { describe, expect, it } from "vitest";
import { connectAzure } from "../../engine/storage/azure/connect.js";

// Which Azure credential a destination gets, from the environment as Azure's own tools read it.
// No request is made here (the identity chain loads its library only on this path).
describe("Azure credentials from the environment", () => {
  const destination = { type: "azure" as const, accountName: "vrbacct", container: "snapshots", prefix: "" };

  it("without a connection string or account key, uses the identity chain (workload or managed identity)", () => {
    const c = connectAzure(destination, {});
    expect(c.kind).toBe("identity");
    expect(c.endpoint).toBe("https://vrbacct.blob.core.windows.net");
    expect(c.service.getContainerClient("snapshots").url).toBe("https://vrbacct.blob.core.windows.net/snapshots");
  });

  it("an account key wins over the identity chain", () => {
    expect(connectAzure(destination, { AZURE_STORAGE_KEY: Buffer.from("k".repeat(32)).toString("base64") }).kind).toBe("account-key");
  });
});
