import type { Command } from "commander";
import { ConfigError, parseDuration, startExporter } from "../../engine/index.js";
import { progressFor, runCommand, withPolicyStore } from "./common.js";
import { addDestinationFlag, addPolicyFlags, type PolicyFlags } from "./options.js";
import { durationFlag, readerPolicy } from "./status.js";

interface ExporterFlags extends PolicyFlags {
  listen: string;
  interval: string;
}

/** host:port ([v6]:port accepted); the port may be 0 (any free one, printed). */
function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`--listen: '${v}' is not HOST:PORT, e.g. 127.0.0.1:9464`, { field: "--listen" });
  return { host: m[1] ?? m[2]!, port };
}

export function registerExporter(program: Command): void {
  const cmd = program
    .command("exporter")
    .description("serve /metrics (Prometheus) and /healthz for every cluster under the bucket's prefix; the bucket is read in the background, scrapes answer from the cache");
  addDestinationFlag(addPolicyFlags(cmd, { nodes: false }))
    .option("--listen <host:port>", "address to serve on", "127.0.0.1:9464")
    .option("--interval <duration>", "time between reads of the bucket (e.g. 60s, 5m)", durationFlag("--interval"), "60s")
    .action(async (o: ExporterFlags) =>
      runCommand(o, async () => {
        const listen = parseListen(o.listen);
        const intervalMs = parseDuration(o.interval);
        const policy = readerPolicy(o, true);
        await withPolicyStore(
          policy,
          async (store) => {
            const exporter = await startExporter({
              store,
              every: policy.schedule.every,
              ...listen,
              intervalMs,
              progress: progressFor(o),
            });
            process.stderr.write(`vrb: exporter serving ${exporter.url}/metrics for destination '${store.name}' ${store.url(store.prefix)} (every ${o.interval})\n`);
            // Runs until SIGTERM / SIGINT (a Deployment's stop, Ctrl-C), then closes the listener.
            await new Promise<void>((resolve) => {
              const stop = () => resolve();
              process.once("SIGTERM", stop);
              process.once("SIGINT", stop);
            });
            await exporter.close();
          },
          o.destination,
        );
      }),
    );
}
