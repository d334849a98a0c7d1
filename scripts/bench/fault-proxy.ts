import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";

/** Which requests a fault applies to. */
export type RequestMatch = (req: IncomingMessage, url: URL) => boolean;

/** S3 part uploads: PUT with partNumber (and uploadId) in the query. */
export const partUploads: RequestMatch = (req, url) => req.method === "PUT" && url.searchParams.has("partNumber");

export type Fault =
  /** Answer with an S3-style XML error (e.g. 503 SlowDown, 500 InternalError); the server never sees the request. */
  | { kind: "s3-error"; status: number; code: string; message?: string }
  /** Close the client's connection without an answer. */
  | { kind: "drop" }
  /** Forward, but only after this long. */
  | { kind: "delay"; ms: number }
  /** Forward, then cut the connection after this many bytes of the answer's body. */
  | { kind: "cut"; afterBytes: number }
  /** Forward the request body at most this fast (a slow uplink); the answer passes at full speed. */
  | { kind: "throttle"; bytesPerSec: number };

export interface FaultRule {
  match: RequestMatch;
  /** Share of the matching requests this fault hits, 0..1 (rules are tried in order; one die roll per rule). */
  share: number;
  fault: Fault;
  /** Hit at most this many requests (e.g. "the first two part uploads"); default unlimited. */
  limit?: number;
  /** Requests this rule hit so far. */
  hits?: number;
}

/**
 * A small HTTP proxy on 127.0.0.1 in front of a real server (S3 or a Vault node) that injects
 * faults into a share of the requests. Requests pass through unchanged (the Host header too, so
 * S3 signatures stay valid); the server behind it stays real. `rules` may be changed at any time.
 */
export class FaultProxy {
  rules: FaultRule[] = [];
  /** Requests seen, and faults injected per kind/code. */
  readonly stats = { requests: 0, matched: 0, injected: {} as Record<string, number> };
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly target: URL;

  constructor(
    target: string,
    private readonly random: () => number = Math.random,
  ) {
    this.target = new URL(target);
  }

  get url(): string {
    const a = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private pick(req: IncomingMessage, url: URL): Fault | undefined {
    let matched = false;
    for (const r of this.rules) {
      if (!r.match(req, url)) continue;
      matched = true;
      if ((r.limit === undefined || (r.hits ?? 0) < r.limit) && this.random() < r.share) {
        r.hits = (r.hits ?? 0) + 1;
        this.stats.matched++;
        return r.fault;
      }
    }
    if (matched) this.stats.matched++;
    return undefined;
  }

  private count(name: string): void {
    this.stats.injected[name] = (this.stats.injected[name] ?? 0) + 1;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const url = new URL(req.url ?? "/", this.target);
    const fault = this.pick(req, url);
    if (fault?.kind === "drop") {
      this.count("drop");
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "s3-error") {
      this.count(fault.code);
      // Read the body first: answering while the client still sends it ends in a reset, not an answer.
      req.resume();
      req.on("end", () => {
        const body =
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>${fault.message ?? `injected ${fault.code}`}</Message>` +
          `<Resource>${url.pathname}</Resource><RequestId>fault-proxy</RequestId></Error>`;
        res.writeHead(fault.status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body), connection: "keep-alive" });
        res.end(body);
      });
      return;
    }
    // A request whose client went away while it was held never reaches the server, as on a real
    // path where the connection is gone before the request got through.
    let clientGone = false;
    const onClientGone = () => (clientGone = true);
    req.socket.once("close", onClientGone);
    // The client's socket is kept alive across requests: each request takes its listener off
    // when its response is done, or they pile up (Node's MaxListenersExceededWarning after ten).
    res.once("close", () => req.socket.off("close", onClientGone));
    // A held request's body is read while it is held: a socket left paused (a body larger than its
    // buffers) would never notice its client going away, and the held request would reach the
    // server after all.
    const held: Buffer[] = [];
    const collect = (chunk: Buffer) => held.push(chunk);
    const forward = () => {
      if (clientGone || req.socket.destroyed) {
        this.count("client-gone");
        return;
      }
      const upstream = request({ host: this.target.hostname, port: this.target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.on("error", () => res.destroy());
        if (fault?.kind !== "cut") {
          up.pipe(res);
          return;
        }
        this.count("cut");
        let sent = 0;
        up.on("data", (chunk: Buffer) => {
          if (sent >= fault.afterBytes) return;
          const part = chunk.subarray(0, fault.afterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= fault.afterBytes) {
            up.destroy();
            req.socket.destroy();
          }
        });
        up.on("end", () => res.end());
      });
      upstream.on("error", () => res.destroy());
      if (fault?.kind === "throttle") {
        this.count("throttle");
        // When the server gives up on the body (answers early, closes), the client's connection
        // goes too once the answer is through, as with a real server that stops reading.
        const socket = req.socket;
        upstream.on("close", () => setTimeout(() => socket.destroy(), 50));
        void pace(req, upstream, fault.bytesPerSec).catch(() => upstream.destroy());
      } else if (fault?.kind === "delay") {
        req.off("data", collect);
        for (const chunk of held) upstream.write(chunk);
        if (req.readableEnded) upstream.end();
        else req.pipe(upstream);
      } else req.pipe(upstream);
      res.on("close", () => upstream.destroy());
    };
    if (fault?.kind === "delay") {
      this.count("delay");
      req.on("data", collect);
      setTimeout(forward, fault.ms);
    } else forward();
  }
}

/** Copies `from` to `to` at most `bytesPerSec`, in slices of a tenth of a second. */
async function pace(from: Readable, to: Writable, bytesPerSec: number): Promise<void> {
  const started = Date.now();
  const slice = Math.max(1, Math.floor(bytesPerSec / 10));
  let sent = 0;
  for await (const chunk of from as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i += slice) {
      if (to.destroyed) return;
      const part = chunk.subarray(i, i + slice);
      sent += part.length;
      const due = started + (sent / bytesPerSec) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      if (to.destroyed) return;
      if (!to.write(part)) await once(to, "drain");
    }
  }
  to.end();
}
