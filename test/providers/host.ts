import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { packageRoot } from "../../engine/package-info.js";

/**
 * Pulumi's REAL dynamic-provider host (`@pulumi/pulumi/cmd/dynamic-provider`), started as a fresh
 * plain Node process, driven over gRPC the way the Pulumi engine drives it: the host turns
 * `__provider` text back into a provider with `require-from-string`, calls its methods and
 * converts results to protobuf Structs. Nothing of the provider runs inside vitest.
 */
const requireFromPulumi = createRequire(join(packageRoot(), "node_modules", "@pulumi", "pulumi", "package.json"));
const grpc = requireFromPulumi("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
/* eslint-disable @typescript-eslint/no-explicit-any -- generated protobuf stubs carry no types */
const provproto = requireFromPulumi("./proto/provider_pb") as any;
const provrpc = requireFromPulumi("./proto/provider_grpc_pb") as any;
const structproto = requireFromPulumi("google-protobuf/google/protobuf/struct_pb") as any;

export type Props = Record<string, unknown>;
export interface CheckAnswer {
  inputs: Props;
  failures: { property: string; reason: string }[];
}
export interface DiffAnswer {
  changes: "unknown" | "none" | "some";
  replaces: string[];
  deleteBeforeReplace: boolean;
}

export class ProviderHost {
  private constructor(
    private readonly child: ChildProcess,
    private readonly client: any,
    private readonly type: string,
    readonly logs: { stderr: string },
  ) {}

  /** Starts the host with `cwd` as the Pulumi project directory and `env` as its environment. */
  static async start(type: string, env: Record<string, string>, cwd = packageRoot()): Promise<ProviderHost> {
    const entry = join(packageRoot(), "node_modules", "@pulumi", "pulumi", "cmd", "dynamic-provider", "index.js");
    const base: Record<string, string | undefined> = { ...process.env };
    for (const k of ["VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN", "AWS_ENDPOINT_URL_S3"]) delete base[k];
    // The host only needs an engine address argument to exist; it never dials it for CRUD calls.
    const child = spawn(process.execPath, [entry, "127.0.0.1:9"], { cwd, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const logs = { stderr: "" };
    child.stderr!.on("data", (d: Buffer) => (logs.stderr += d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`provider host did not print its port in 30s; stderr: ${logs.stderr}`)), 30_000);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\s*$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on("exit", (code) => reject(new Error(`provider host exited (${code}): ${logs.stderr}`)));
    });
    const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const host = new ProviderHost(child, client, type, logs);
    // As the engine does first; the host answers that it does not accept secrets.
    const req = new provproto.ConfigureRequest();
    req.setArgs(structproto.Struct.fromJavaScript({}));
    const res = await host.call<any>("configure", req);
    if (res.getAcceptsecrets() !== false) throw new Error("the dynamic-provider host unexpectedly accepts secrets");
    return host;
  }

  /**
   * Waits until the host's stderr matches `pattern`: the host writes its log lines to a pipe, and an
   * RPC's answer can arrive before the line the call wrote is read. Fails with the log seen so far.
   */
  async logLine(pattern: RegExp, waitMs = 10_000): Promise<string> {
    const until = Date.now() + waitMs;
    while (!pattern.test(this.logs.stderr)) {
      if (Date.now() > until) throw new Error(`the provider host never logged ${pattern}; its stderr:\n${this.logs.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.logs.stderr;
  }

  /**
   * Closes the reading end of the host's stderr, as a Pulumi engine that was SIGKILLed leaves it:
   * the host and the processes it started (which share that stderr) then write into a closed pipe.
   */
  closeOutput(): void {
    this.child.stderr?.destroy();
  }

  /** The host process's pid (the processes it starts are its children). */
  get pid(): number {
    return this.child.pid!;
  }

  get urn(): string {
    return `urn:pulumi:test::vrb::pulumi-nodejs:dynamic/vault-raft-backup:${this.type}::test`;
  }

  private call<T>(method: string, req: unknown, timeoutMs = 600_000): Promise<T> {
    return new Promise((resolve, reject) => {
      this.client[method](req, { deadline: Date.now() + timeoutMs }, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
    });
  }

  async check(olds: Props, news: Props): Promise<CheckAnswer> {
    const req = new provproto.CheckRequest();
    req.setUrn(this.urn);
    req.setOlds(structproto.Struct.fromJavaScript(olds));
    req.setNews(structproto.Struct.fromJavaScript(news));
    const res = await this.call<any>("check", req);
    return {
      inputs: res.getInputs().toJavaScript(),
      failures: res.getFailuresList().map((f: any) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(id: string, olds: Props, news: Props): Promise<DiffAnswer> {
    const req = new provproto.DiffRequest();
    req.setId(id);
    req.setUrn(this.urn);
    req.setOlds(structproto.Struct.fromJavaScript(olds));
    req.setNews(structproto.Struct.fromJavaScript(news));
    const res = await this.call<any>("diff", req);
    const changes = (["unknown", "none", "some"] as const)[res.getChanges() as number]!;
    return { changes, replaces: res.getReplacesList(), deleteBeforeReplace: res.getDeletebeforereplace() };
  }

  async create(properties: Props): Promise<{ id: string; outs: Props }> {
    const req = new provproto.CreateRequest();
    req.setUrn(this.urn);
    req.setProperties(structproto.Struct.fromJavaScript(properties));
    const res = await this.call<any>("create", req);
    return { id: res.getId(), outs: res.getProperties().toJavaScript() };
  }

  async read(id: string, state: Props, inputs: Props): Promise<{ id: string; outs: Props }> {
    const req = new provproto.ReadRequest();
    req.setId(id);
    req.setUrn(this.urn);
    req.setProperties(structproto.Struct.fromJavaScript(state));
    req.setInputs(structproto.Struct.fromJavaScript(inputs));
    const res = await this.call<any>("read", req);
    return { id: res.getId(), outs: res.getProperties().toJavaScript() };
  }

  async delete(id: string, state: Props): Promise<void> {
    const req = new provproto.DeleteRequest();
    req.setId(id);
    req.setUrn(this.urn);
    req.setProperties(structproto.Struct.fromJavaScript(state));
    await this.call<any>("delete", req);
  }

  async stop(): Promise<void> {
    this.client.close();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.kill("SIGTERM");
    });
  }
}
