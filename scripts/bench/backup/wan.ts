// The WAN profile: S3 behind a link of WAN_DELAY_MS each way. netem where the kernel has it is only
// probed (in a throwaway network namespace); the link itself is the user-space delay relay
// (scripts/bench/delay-proxy.ts) in its own process, counted and pinned with the servers.
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../../../engine/package-info.js";

export const WAN_DELAY_MS = 20;

/** Why netem cannot be used here (tried in a throwaway network namespace), or undefined. */
export function netemUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (netem needs CAP_NET_ADMIN)";
  const ns = `vrbbench${process.pid}`;
  const add = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
  if (add.error) return "ip (iproute2) is not installed";
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  try {
    const r = spawnSync("ip", ["netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", `${WAN_DELAY_MS}ms`], { encoding: "utf8" });
    if (r.error) return "tc (iproute2) is not installed";
    return r.status === 0 ? undefined : `tc netem failed: ${r.stderr.trim()} (the kernel has no sch_netem)`;
  } finally {
    spawnSync("ip", ["netns", "del", ns]);
  }
}

/** What the WAN profile is, for the log and the figures' context. */
export function describeWan(noNetem: string | undefined): string {
  return noNetem
    ? `user-space delay relay, ${WAN_DELAY_MS} ms each way (netem unavailable: ${noNetem})`
    : `user-space delay relay, ${WAN_DELAY_MS} ms each way (netem is available here too)`;
}

/** The WAN profile's link to `target`: the delay relay in its own process. */
export async function startDelayRelay(target: string): Promise<{ url: string; pid: number; stop: () => void }> {
  const u = new URL(target);
  const child = spawn(process.execPath, [join(packageRoot(), "dist", "scripts", "bench", "delay-proxy.js"), `${u.hostname}:${u.port}`, String(WAN_DELAY_MS)], {
    // Its stdin is a pipe from us: it exits when the bench does, even if the bench is killed.
    stdio: ["pipe", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the delay relay exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill() };
}
