import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, OperationError } from "../../engine/errors.js";
import { VaultClient } from "../../engine/vault/client.js";

// The client makes its connection pool on its first request (docs/architecture.md#start-up); what
// it is given is still checked when it is made.
describe("VaultClient", () => {
  let server: Server;
  let connections = 0;
  let addr = "";

  beforeAll(async () => {
    server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    addr = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("refuses a CA file that does not exist when it is made, naming the field and the fix, before connecting anywhere", () => {
    let refused: unknown;
    try {
      new VaultClient({ addr, caCert: "/nonexistent/vault-ca.pem" });
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused).toMatchObject({
      message: "caCert: file /nonexistent/vault-ca.pem does not exist; give a PEM file path or the PEM text itself",
      field: "cluster.caCert",
    });
    expect(connections).toBe(0);
  });

  it("once closed, refuses a request without connecting, as a client for another node made from it does", async () => {
    const client = new VaultClient({ addr, retries: 0 });
    const sibling = client.forNode(addr.replace("127.0.0.1", "localhost"));
    await client.close();
    await expect(client.get("sys/health")).rejects.toThrow(OperationError);
    await expect(client.get("sys/health")).rejects.toThrow(/GET \/v1\/sys\/health.*closed/);
    await expect(sibling.get("sys/health")).rejects.toThrow(/closed/);
    expect(connections).toBe(0);
  });
});
