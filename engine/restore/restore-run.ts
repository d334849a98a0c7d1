import { chmodSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Identities } from "../crypto/identities.js";
import { VrbError } from "../errors.js";
import { formatBytes, silentProgress, type Progress } from "../progress.js";
import type { SnapshotStore, StoredSnapshot } from "../catalogue/snapshot-store.js";
import type { RemoteSnapshot } from "../catalogue/url-source.js";
import { VaultClient, type VaultTlsOptions } from "../vault/client.js";
import { productOfManifest, productProfile, type Product } from "../vault/product.js";
import type { RestoreKeys } from "./keys.js";
import type { SealPlan } from "./seal.js";
import { StepLog, formatMs, type RestoreStep } from "./steps.js";
import { Deadlines } from "./deadlines.js";
import { CLI_RESTORE_SETTINGS, type RestoreSettingNames } from "./setting-names.js";
import { normaliseNodes } from "./target-health.js";

export type RestoreMode = "rebuild" | "in-place";

export interface RestoreOptions {
  mode: RestoreMode;
  /** Target API addresses; a rebuild restores onto nodes[0] first. */
  nodes: string[];
  /** Where `snapshot` is resolved; not needed with `remote`. */
  store?: SnapshotStore;
  /** "latest" | "s3://bucket/key" | key (with `remote`: only a label) */
  snapshot: string;
  /** A snapshot from elsewhere than the store, e.g. pre-signed URLs (engine/catalogue/url-source.ts). */
  remote?: RemoteSnapshot;
  /** Which cluster's "latest". */
  cluster?: string;
  /**
   * The ORIGINAL cluster's keys: unseal keys (Shamir seal) or recovery keys (auto-unseal seal),
   * and the init root token if the keys file had one. A Shamir rebuild cannot do without unseal
   * keys; an auto-unseal rebuild needs none (they only serve to make a verification token).
   */
  keys?: RestoreKeys;
  /** A token of the original cluster (its tokens come back with the snapshot). Tried, never required by a rebuild. */
  token?: string;
  /** in-place: also restore a snapshot of another cluster/keyring (snapshot-force). */
  force?: boolean;
  /**
   * Rebuild onto auto-unseal nodes: the shell command that restarts one node's server, with
   * placeholders {host}, {node}, {index} (engine/restore/restart.ts). Node 1 is restarted after the
   * snapshot is applied, so it loads the restored keys without a token.
   */
  restartCommand?: string;
  /** Rebuild onto auto-unseal nodes: the operator says the targets' listeners serve generate-root (not OpenBao's default). */
  unauthedGenerateRoot?: boolean;
  /** Vault paths that must be readable after the restore (needs a token). */
  canaries?: string[];
  tls?: VaultTlsOptions;
  /** Decrypts a client-side encrypted snapshot while it downloads (missing or not a recipient: refused in preflight). */
  identities?: Identities;
  progress?: Progress;
  timeoutsMs?: Partial<{ step: number; total: number }>;
  /** How the caller's user sets each option, as messages name them (default: `vrb restore`'s flags). */
  settingNames?: RestoreSettingNames;
  /**
   * Stops the restore (SIGTERM, Ctrl-C) at the next safe point: at once during the download and
   * during waits, never between a join or seal and the unseal that completes it. It then fails
   * like any restore failing part-way (every node's state, the next command), with an
   * InterruptedError, and its temp copy of the snapshot is removed.
   */
  signal?: AbortSignal;
}

export interface RestoreNodeReport {
  addr: string;
  nodeId?: string;
  role: string;
  voter?: boolean;
  /** The node's own applied raft index when the restore ended. */
  raftIndex?: number;
}

/** A check the restore could not make (it needs a token), with the command that makes it later. */
export interface NotVerified {
  check: string;
  why: string;
  command: string;
}

/** Where the verification token came from; "none" means only token-free checks ran. */
export type TokenSource = "operator" | "keys-file" | "generated" | "none";

/**
 * The restored snapshot. `product` and `version` are the source cluster's, from the manifest (the
 * product guessed from the version for manifests older than the field); absent before the
 * snapshot was resolved.
 */
export interface RestoredSnapshot {
  bucket: string;
  key: string;
  /** Where it came from: the store's URL of it, or the pre-signed URL's label (before it was resolved: the reference given). */
  url: string;
  sha256: string;
  raftIndex: number;
  takenAt: string;
  product?: Product;
  version?: string;
}

export interface RestoreReport {
  ok: boolean;
  mode: RestoreMode;
  snapshot: RestoredSnapshot;
  /** The targets' seal: "shamir" or an auto-unseal type ("transit", "awskms", ...). */
  seal?: { type: string; recoverySeal: boolean };
  /** "full": voters, autopilot, raft index, canaries checked with a token; "health": only what needs none. */
  verification: "full" | "health";
  token: TokenSource;
  notVerified: NotVerified[];
  steps: RestoreStep[];
  nodes: RestoreNodeReport[];
  autopilot?: { healthy: boolean; failureTolerance: number };
  raftIndex?: number;
  canaries: { path: string; ok: boolean }[];
  durationMs: number;
}

/** An error of a restore that failed part-way: the message says where things stand; `report` has the steps so far. */
export interface RestoreFailure extends VrbError {
  report: RestoreReport;
}

export function restoreReportOf(err: unknown): RestoreReport | undefined {
  return err instanceof VrbError && "report" in err ? (err as RestoreFailure).report : undefined;
}

const DEFAULT_STEP_MS = 120_000;
const DEFAULT_TOTAL_MS = 30 * 60_000;

/**
 * Where a restore stands; decides what the operator is told to do next when it fails.
 * preflight: nothing changed. initialised: node 1 has a throwaway keyring, none of the data.
 * restored: node 1 holds the snapshot. joining: node 1 serves, others being added. verifying:
 * every node is in, the proof is under way. restore-sent: an in-place restore was sent.
 */
export type Phase = "preflight" | "initialised" | "restored" | "joining" | "verifying" | "restore-sent";

/** The state of one restore run, shared by its steps. */
export class RestoreRun {
  readonly log: StepLog;
  readonly progress: Progress;
  readonly client: VaultClient;
  readonly nodes: string[];
  readonly tmp: string;
  readonly keys: string[];
  /** How the caller's user sets each option: what messages name. */
  readonly names: RestoreSettingNames;
  readonly started = Date.now();
  phase: Phase = "preflight";
  snapshot?: StoredSnapshot;
  seal?: SealPlan;
  sha256 = "";
  token: TokenSource = "none";
  generatedToken?: string;
  generatedTokenAccessor?: string;
  joined: string[] = [];
  notVerified: NotVerified[] = [];
  canaries: { path: string; ok: boolean }[] = [];
  autopilot?: RestoreReport["autopilot"];
  raftIndex?: number;
  nodeReports: RestoreNodeReport[] = [];
  /** Size of the verified snapshot file, once downloaded. */
  snapshotBytes?: number;

  constructor(readonly opts: RestoreOptions) {
    this.names = opts.settingNames ?? CLI_RESTORE_SETTINGS;
    this.progress = opts.progress ?? silentProgress;
    const t = opts.timeoutsMs;
    const deadlines = new Deadlines(t?.step ?? DEFAULT_STEP_MS, t?.total ?? DEFAULT_TOTAL_MS, { step: t?.step !== undefined, total: t?.total !== undefined });
    this.log = new StepLog(deadlines, this.progress, opts.signal);
    this.nodes = normaliseNodes(opts.nodes, this.names.nodes);
    this.keys = opts.keys?.keys ?? [];
    this.client = new VaultClient({ addr: this.nodes[0]!, caCert: opts.tls?.caCert, tlsServerName: opts.tls?.tlsServerName, retries: 1 });
    this.tmp = mkdtempSync(join(tmpdir(), "vrb-restore-"));
    chmodSync(this.tmp, 0o700);
  }

  get manifest() {
    return this.snapshot?.manifest;
  }

  report(ok: boolean): RestoreReport {
    const s = this.snapshot;
    return {
      ok,
      mode: this.opts.mode,
      snapshot: {
        bucket: s?.bucket ?? this.opts.store?.bucket ?? "",
        key: s?.key ?? this.opts.snapshot,
        url: s?.url ?? this.opts.snapshot,
        sha256: this.sha256 || s?.manifest?.sha256 || "",
        raftIndex: s?.manifest?.raft.index ?? s?.raftIndex ?? 0,
        takenAt: s ? s.takenAt.toISOString() : "",
        ...(s?.manifest ? { product: productOfManifest(s.manifest.vault), version: s.manifest.vault.version } : {}),
      },
      ...(this.seal ? { seal: { type: this.seal.type, recoverySeal: this.seal.kind === "auto" } } : {}),
      verification: this.token === "none" ? "health" : "full",
      token: this.token,
      notVerified: this.notVerified,
      steps: this.log.steps,
      nodes: this.nodeReports,
      ...(this.autopilot ? { autopilot: this.autopilot } : {}),
      ...(this.raftIndex !== undefined ? { raftIndex: this.raftIndex } : {}),
      canaries: this.canaries,
      durationMs: Date.now() - this.started,
    };
  }

  /**
   * The verified snapshot file is in hand: the waits that grow with it get their deadlines from
   * its size (unless the step deadline was set), and the operator is told what they are.
   */
  sizeDeadlinesTo(file: string): void {
    const bytes = statSync(file).size;
    this.snapshotBytes = bytes;
    const d = this.log.deadlines;
    d.sizeTo(bytes, this.nodes.length);
    if (d.sizedStepMs > d.stepMs) {
      this.progress.info(
        `snapshot is ${formatBytes(bytes)}: waits for nodes to receive and apply it may take up to ${formatMs(d.sizedStepMs)} each ` +
          `(the whole restore up to ${formatMs(d.totalMs)})${this.names.stepTimeout ? `; ${this.names.stepTimeout} sets them explicitly` : ""}`,
      );
    }
  }

  /**
   * The CLI that follow-up commands in messages name: `vault` for a HashiCorp Vault snapshot, `bao`
   * for OpenBao's (the manifest's product; OpenBao's until the snapshot is resolved).
   */
  get cli(): string {
    return productProfile(productOfManifest(this.manifest?.vault)).tool;
  }

  /**
   * Follow-up `bao` / `vault` commands that need a token, run one after the other: every such
   * command in the report says so the same way, so none run as printed fails with a bare 403.
   */
  withOriginalToken(...commands: string[]): string {
    // Each command its own assignment: one before `a && b` would reach `a` only.
    return commands.map((c) => `VAULT_TOKEN=<a token of the original cluster> ${c}`).join(" && ");
  }

  /** `-address` plus the CA flag a follow-up `bao` / `vault` command needs for this node. */
  baoTarget(addr: string): string {
    const ca = this.opts.tls?.caCert;
    const caFlag = ca && !ca.includes("-----BEGIN") ? ` -ca-cert=${ca}` : "";
    return `-address=${addr}${caFlag}`;
  }
}
