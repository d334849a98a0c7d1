import { createServer, type Server } from "node:net";
import { describe, expect, it } from "vitest";
import { bootstrapCluster, defineNode, startNode, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { PRODUCTS, tempDir } from "../support/env.js";

// Both products log a cluster port they cannot bind and carry on without a cluster listener: the
// node joins, unseals, and autopilot never turns healthy. Found as an intermittent "timed out after
// 60s waiting for 3 raft voters with healthy autopilot" in CI.
describe.each(PRODUCTS)("a node whose cluster port another process holds (real %s)", (product) => {
  it("starting a cluster stops once that node is up, naming it, its port and its log line, instead of waiting out autopilot", async () => {
    const dir = tempDir(`port-clash-${product}`);
    const nodes: LocalNode[] = [await defineNode(dir, "node-1", { product }), await defineNode(dir, "node-2", { product })];
    const clusterPort = Number(new URL(nodes[0]!.clusterAddr).port);
    const squatter: Server = createServer((s) => s.destroy());
    await new Promise<void>((resolve, reject) => squatter.once("error", reject).listen(clusterPort, "127.0.0.1", resolve));
    try {
      for (const n of nodes) await startNode(n);
      const err = await bootstrapCluster(nodes, { timeoutMs: 60_000 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(
        new RegExp(
          `^node-1 could not listen on its cluster address ${nodes[0]!.clusterAddr}: another process holds port ${clusterPort} \\(its log: .*error starting listener.*address already in use.*\\); nodes started again take new ports$`,
        ),
      );
    } finally {
      for (const n of nodes) await stopNode(n);
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
