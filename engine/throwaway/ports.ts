import { mkdirSync, openSync, closeSync, readFileSync, statSync, unlinkSync, utimesSync } from "node:fs";
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
 * Renews the reservation of a port we hold: a node stopped and started again on its address (a
 * restore, a restart) must not find that a parallel start took its port because the first
 * reservation had grown old.
 */
export function renewPortReservation(port: number): void {
  const path = join(RESERVATION_DIR, String(port));
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    reserve(port);
  }
}

/** Where the kernel takes the source ports of outgoing connections (Linux default; macOS uses 49152-65535). */
const DEFAULT_EPHEMERAL = { low: 32768, high: 60999 };
const LOWEST_PORT = 10000;

/** The kernel's ephemeral port range, from /proc on Linux. */
export function ephemeralPortRange(read: () => string = () => readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")): { low: number; high: number } {
  try {
    const [low, high] = read().trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! > 0 && high! >= low!) return { low: low!, high: high! };
  } catch {
    // Not Linux: the default below is what Linux and most BSDs use by default.
  }
  return DEFAULT_EPHEMERAL;
}

/**
 * The ports we may hand out: below the kernel's ephemeral range. A port inside it can be taken as
 * the source port of any outgoing connection (an S3 upload, a raft RPC) between our probe and the
 * server's bind, or while a node is stopped for a restore and started again on the same address.
 * If the range leaves too little room below it, ports above it, then anywhere.
 */
export function portCandidates(maxOffset: number, range = ephemeralPortRange()): { from: number; count: number } {
  const below = range.low - maxOffset - LOWEST_PORT;
  if (below >= 2000) return { from: LOWEST_PORT, count: below };
  const above = 65535 - maxOffset - range.high;
  if (above >= 2000) return { from: range.high + 1, count: above };
  return { from: LOWEST_PORT, count: 65535 - maxOffset - LOWEST_PORT };
}

/**
 * A free port on 127.0.0.1 such that every `port + offset` is free too (SeaweedFS puts gRPC on
 * http+10000), reserved for this caller so parallel starts do not collide.
 */
export async function freePort(offsets: number[] = []): Promise<number> {
  const { from, count } = portCandidates(Math.max(0, ...offsets));
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = from + Math.floor(Math.random() * count);
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
