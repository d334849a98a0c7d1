// A TCP relay that delays every byte by a fixed time in each direction: the bench's WAN profile
// where netem (kernel qdisc) is not available. Run as its own process, so the bench can pin it
// beside the servers instead of on the client's core:
//   node dist/scripts/bench/delay-proxy.js <target host:port> <delay ms>   (prints "listening PORT")
// Each direction queues at most WINDOW bytes in flight, like a TCP window on a long link: the
// relay stops reading when it is full, so a fast sender sees the same backpressure.
import { connect, createServer, type Socket } from "node:net";

const WINDOW = 8 * 1024 * 1024;

/** Copies `from` to `to`, each chunk `delayMs` later, keeping the order and at most WINDOW in flight. */
function delayed(from: Socket, to: Socket, delayMs: number): void {
  let inFlight = 0;
  from.on("data", (chunk: Buffer) => {
    inFlight += chunk.length;
    if (inFlight >= WINDOW) from.pause();
    setTimeout(() => {
      inFlight -= chunk.length;
      if (!to.destroyed) to.write(chunk);
      if (inFlight < WINDOW / 2 && from.isPaused()) from.resume();
    }, delayMs);
  });
  from.on("end", () => setTimeout(() => to.end(), delayMs));
  from.on("error", () => to.destroy());
  from.on("close", () => setTimeout(() => to.destroy(), delayMs + 1));
}

const [target, delayText] = process.argv.slice(2);
const m = /^(.+):(\d+)$/.exec(target ?? "");
const delayMs = Number(delayText);
if (!m || !Number.isFinite(delayMs)) {
  process.stderr.write("usage: delay-proxy.js <host:port> <delay ms>\n");
  process.exit(2);
}
const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect({ host: m[1]!, port: Number(m[2]) });
  upstream.setNoDelay(true);
  delayed(client, upstream, delayMs);
  delayed(upstream, client, delayMs);
});
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === "object" && addr ? addr.port : 0}\n`);
});
process.on("SIGTERM", () => process.exit(0));
// The bench holds our stdin: when it ends, however it ends, so do we (no relay left behind).
process.stdin.on("close", () => process.exit(0));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
