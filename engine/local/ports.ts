import { createServer } from "node:net";

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

/**
 * A free port on 127.0.0.1 such that every `port + offset` is free too (SeaweedFS puts gRPC on
 * http+10000). Ports given out by this process are not reused, so parallel starts do not collide.
 */
export async function freePort(offsets: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    const all = [port, ...offsets.map((o) => port + o)];
    if (all.some((p) => handedOut.has(p))) continue;
    let ok = true;
    for (const p of all) {
      if (!(await canListen(p))) {
        ok = false;
        break;
      }
    }
    if (ok) {
      all.forEach((p) => handedOut.add(p));
      return port;
    }
  }
  throw new Error("no free port found on 127.0.0.1");
}
