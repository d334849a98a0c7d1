import { mkdirSync, openSync, closeSync, statSync, unlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * Ports handed out are also reserved across processes (parallel test workers, a `vrb local up` in
 * another shell): between our probe and the server binding, another process could otherwise pick the
 * same port, and a health check would then reach the other process's server.
 */
const RESERVATION_DIR = join(tmpdir(), "vrb-port-reservations");
const RESERVATION_TTL_MS = 10 * 60_000;

function reserve(port: number): boolean {
  mkdirSync(RESERVATION_DIR, { recursive: true });
  const path = join(RESERVATION_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      closeSync(openSync(path, "wx"));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      try {
        // A reservation outlives the bind by far; an old one belongs to nobody any more.
        if (Date.now() - statSync(path).mtimeMs < RESERVATION_TTL_MS) return false;
        unlinkSync(path);
      } catch {
        return false;
      }
    }
  }
  return false;
}

/**
 * A free port on 127.0.0.1 such that every `port + offset` is free too (SeaweedFS puts gRPC on
 * http+10000), reserved for this caller so parallel starts do not collide.
 */
export async function freePort(offsets: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    const all = [port, ...offsets.map((o) => port + o)];
    let ok = true;
    for (const p of all) {
      if (!(await canListen(p))) {
        ok = false;
        break;
      }
    }
    if (ok && all.every(reserve)) return port;
  }
  throw new Error("no free port found on 127.0.0.1");
}
