// The scenarios: what the bench runs against the local environment, each a real client in a child
// process (`vrb backup`, `bao operator raft snapshot save`, `aws s3 cp`), measured by measure.ts.
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { environmentVariables, type LocalEnvironment } from "../../../devenv/environment.js";
import type { LocalAzurite } from "../../../devenv/azurite.js";
import { packageRoot } from "../../../engine/package-info.js";
import { toolPath } from "../../../engine/throwaway/binaries.js";
import { cpuMsOf, timedChild, type ChildCost } from "./measure.js";
import { profileBackup, type ProfileFigures } from "./profile.js";

export type BackupCost = ChildCost & { transferMs: number; bytes: number };

/** (b) and its runbook peers, one layout. */
export interface PeerFigures {
  /** (b) vrb backup, and its own transfer time from the report. */
  b: ChildCost & { transferMs: number; bytes: number };
  /** (c) save + upload = save.ms + u.ms. */
  save: ChildCost;
  u: ChildCost;
  cMs: number;
  bOverC: number;
  /** max(a, u) / b: 1.0 is a perfect pipeline. */
  overlap: number;
  /**
   * The servers' CPU during (b) over (b)'s wall time. Pinned to one CPU, 1.0 means that CPU was
   * busy all along: (b) cannot be faster than the servers' own work, whatever the client does.
   */
  serversBusyInB: number;
  /** The servers' CPU during (b) over (c)'s wall time: the lowest b/c the servers' CPU allows. */
  bOverCFloor: number;
}

/**
 * (f) S3 + an Azurite copy in one pass, against each store alone, all three measured one after the
 * other in the same layout; ratio = withCopy / the slower alone (target <= 1.15).
 */
export interface CopyFigures {
  s3Alone: BackupCost;
  azureAlone: BackupCost;
  withCopy: BackupCost;
  /** Azurite's own CPU milliseconds during each (it is one of `serversCpuMs`). */
  azuriteCpuMs: { s3Alone: number; azureAlone: number; withCopy: number };
  ratio: number;
}

/** (p) the provider's backup in the host's Node and in a Node of its own (peak RSS: the larger process's). */
export interface ProviderFigures {
  inHost: ChildCost;
  ownProcess: ChildCost;
}

/** Which encrypted backups (e) to run: age (X25519) and OpenPGP (a Curve25519 key), each to a fresh recipient. */
export type EncryptionFormat = "age" | "pgp";

/**
 * The `vrb` executable as a user starts it: the npm bin run as a program (its own first lines pick
 * how Node starts), not `node vrb.js`. `npm run build` leaves it executable (scripts/bundle-cli.mjs).
 */
export function vrbExecutable(): string {
  return join(packageRoot(), "dist", "scripts", "vrb.js");
}

export class Bench {
  readonly vars: Record<string, string>;
  /** The server processes whose CPU is counted (OpenBao, the S3 server, then the WAN relay and Azurite). */
  readonly servers: number[];
  constructor(
    readonly env: LocalEnvironment,
    readonly dir: string,
  ) {
    this.vars = environmentVariables(env);
    this.servers = [...env.nodes.map((n) => n.pid), env.s3?.pid].filter((p): p is number => p !== undefined);
  }

  /** The arguments of `vrb backup --json` into the bench's prefix; `extra` adds flags (e.g. a policy file). */
  private backupArgs(cluster: string, extra: string[] = []): string[] {
    return ["backup", "--json", "--cluster", cluster, "--prefix", "bench/", ...extra];
  }

  /** (b) `vrb backup --json` as a user runs it; `extra` adds flags (e.g. a policy file). */
  async backup(cluster: string, s3Endpoint = this.env.s3!.endpoint, extra: string[] = [], extraEnv: Record<string, string> = {}): Promise<BackupCost> {
    const r = await timedChild(vrbExecutable(), this.backupArgs(cluster, extra), { ...process.env, ...this.vars, AWS_ENDPOINT_URL_S3: s3Endpoint, ...extraEnv }, this.servers);
    const report = JSON.parse(r.out) as { bytes: number; durationsMs: { transfer?: number } };
    const { out: _report, ...cost } = r;
    return { ...cost, transferMs: report.durationsMs.transfer ?? NaN, bytes: report.bytes };
  }

  /** (r) the same backup under `node --cpu-prof` (profile.ts). */
  profiledBackup(cluster: string): Promise<ProfileFigures> {
    return profileBackup(this.backupArgs(cluster), { ...process.env, ...this.vars }, this.servers);
  }

  /** (e) the same backup with the snapshot encrypted to a fresh age or OpenPGP recipient. */
  async encryptedBackup(cluster: string, format: EncryptionFormat): Promise<BackupCost> {
    const policyFile = join(this.dir, `${cluster}.policy.yaml`);
    writeFileSync(policyFile, JSON.stringify({ encryption: { [format]: [await freshRecipient(format)] } }));
    return this.backup(cluster, undefined, ["--policy", policyFile]);
  }

  /**
   * (f) S3 alone, Azurite alone, then S3 with a copy on Azurite, one after the other (same data,
   * same layout, same minute): the ratio's yardstick is measured beside what it judges.
   */
  async withCopy(cluster: string, az: LocalAzurite, container: string): Promise<CopyFigures> {
    const azure = { type: "azure", accountName: az.accountName, container, endpoint: az.endpoint };
    const alone = join(this.dir, `${cluster}.azure.policy.yaml`);
    writeFileSync(alone, JSON.stringify({ destination: azure }));
    const both = join(this.dir, `${cluster}.copy.policy.yaml`);
    writeFileSync(both, JSON.stringify({ copies: [{ name: "offsite", ...azure }], onCopyFailure: "fail" }));
    const azEnv = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
    const azurite = az.pid ? [az.pid] : [];
    const run = async (name: string, extra: string[]) => {
      const before = cpuMsOf(azurite);
      const cost = await this.backup(name, undefined, extra, azEnv);
      return { cost, azuriteCpuMs: cpuMsOf(azurite) - before };
    };
    const s3 = await run(`${cluster}-s3`, []);
    const a = await run(`${cluster}-azure`, ["--policy", alone]);
    const c = await run(`${cluster}-copy`, ["--policy", both]);
    return {
      s3Alone: s3.cost,
      azureAlone: a.cost,
      withCopy: c.cost,
      azuriteCpuMs: { s3Alone: s3.azuriteCpuMs, azureAlone: a.azuriteCpuMs, withCopy: c.azuriteCpuMs },
      ratio: c.cost.ms / Math.max(s3.cost.ms, a.cost.ms),
    };
  }

  /**
   * (p) the VaultSnapshot provider's backup in a Node started as Pulumi's dynamic-provider host is
   * (no flags): in that Node, then in a process of its own (provider-backup.ts), one after the other.
   */
  async provider(cluster: string): Promise<ProviderFigures> {
    const script = join(packageRoot(), "dist", "scripts", "bench", "backup", "provider-backup.js");
    const run = async (mode: string) => {
      const { out: _out, ...cost } = await timedChild(process.execPath, [script, mode, `${cluster}-${mode}`], { ...process.env, ...this.vars }, this.servers);
      return cost;
    };
    return { inHost: await run("in-host"), ownProcess: await run("own-process") };
  }

  /** The runbook's first step: `bao operator raft snapshot save FILE`. */
  save(file: string): Promise<ChildCost> {
    return timedChild(
      toolPath("bao"),
      ["operator", "raft", "snapshot", "save", file],
      { ...process.env, BAO_ADDR: this.env.nodes[0]!.apiAddr, BAO_TOKEN: this.env.keys!.rootToken },
      this.servers,
    );
  }

  /** (u) the runbook's second step: the real `aws s3 cp FILE s3://...` with the CLI's defaults. */
  upload(file: string, key: string, s3Endpoint = this.env.s3!.endpoint): Promise<ChildCost> {
    // The AWS CLI is in the tools venv beside bao (scripts/tools.requirements.txt).
    return timedChild(
      join(dirname(toolPath("bao")), "aws"),
      ["s3", "cp", "--only-show-errors", "--endpoint-url", s3Endpoint, file, `s3://${this.env.bucket!}/${key}`],
      { ...process.env, ...this.vars, AWS_ENDPOINT_URL_S3: s3Endpoint },
      this.servers,
    );
  }

  /** (b), then the runbook (save, then (u)) on the same data; `file` is the runbook's, removed after. */
  async peers(file: string, cluster: string, aMs: number, s3Endpoint?: string): Promise<PeerFigures> {
    const b = await this.backup(cluster, s3Endpoint);
    const save = await this.save(file);
    const u = await this.upload(file, `bench/runbook/${cluster}.snap`, s3Endpoint);
    rmSync(file, { force: true });
    const cMs = save.ms + u.ms;
    return {
      b,
      save,
      u,
      cMs,
      bOverC: b.ms / cMs,
      overlap: Math.max(aMs, u.ms) / b.ms,
      serversBusyInB: b.serversCpuMs / b.ms,
      bOverCFloor: b.serversCpuMs / cMs,
    };
  }
}

/** A recipient nobody keeps the identity of: the bench only measures the writing side. */
async function freshRecipient(format: EncryptionFormat): Promise<string> {
  if (format === "age") {
    const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
    return identityToRecipient(await generateX25519Identity());
  }
  const openpgp = await import("openpgp");
  return (await openpgp.generateKey({ userIDs: [{ name: "vrb bench" }], format: "armored" })).publicKey;
}
