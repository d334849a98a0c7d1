// The report: the figures of one size (SizeFigures) and the tables printed from them.
import { formatBytes } from "../../../engine/progress.js";
import type { StartupFigures } from "./measure.js";
import type { BackupCost, CopyFigures, EncryptionFormat, PeerFigures, ProviderFigures } from "./scenarios.js";

const GiB = 1024 * 1024 * 1024;

/** (e) one encrypted backup beside the plain (b) of the same size and layout. */
export interface EncryptedFigures {
  cost: BackupCost;
  /** CPU seconds per GiB of snapshot (plaintext), whole and less Node start-up, and the same for plain (b). */
  cpuSecondsPerGiB: { encrypted: number; encryptedLessStartup: number; plain: number; plainLessStartup: number };
  /** Encrypted over plain: CPU per GiB (target <= 1.3), the same less start-up, wall time (target <= 1.05). */
  cpuRatio: number;
  cpuRatioLessStartup: number;
  wallRatio: number;
}

export interface SizeFigures {
  dataBytes: number;
  snapshotBytes: number;
  a: { ms: number; cpuMs: number };
  /** (b) and (c) in the bench's layout (pinned where it can pin). */
  local: PeerFigures;
  /** The same with every process free to run on any CPU, as users run it (when the bench pins). */
  unpinned?: PeerFigures;
  wan?: PeerFigures;
  /** CPU milliseconds of SHA-256(file) + gunzip + SHA-256(archive bytes), in a Node of its own (irreducible-work.ts). */
  irreducibleCpuMs: number;
  /** backupInProcess: less start-up and less the kernel's time (the bytes through Vault's and the store's sockets). */
  cpuSecondsPerGiB: { backup: number; backupLessStartup: number; backupInProcess: number; irreducible: number; stream: number; runbook: number };
  cpuRatio: number;
  cpuRatioLessStartup: number;
  cpuRatioInProcess: number;
  faults?: { ms: number; errors: number; maxRssKiB: number };
  /** (e) `vrb backup` encrypted to an age or OpenPGP recipient: the ciphertext is what is stored. */
  encrypted?: Partial<Record<EncryptionFormat, EncryptedFigures>>;
  copy?: CopyFigures;
  provider?: ProviderFigures;
}

/** (e) figures from the encrypted run and the plain (b) beside it. */
export function encryptedFigures(cost: BackupCost, plain: BackupCost, snapshotBytes: number, startupCpuMs: number): EncryptedFigures {
  const perGiB = (cpuMs: number) => cpuMs / 1000 / (snapshotBytes / GiB);
  const g = {
    encrypted: perGiB(cost.cpuMs),
    encryptedLessStartup: perGiB(cost.cpuMs - startupCpuMs),
    plain: perGiB(plain.cpuMs),
    plainLessStartup: perGiB(plain.cpuMs - startupCpuMs),
  };
  return { cost, cpuSecondsPerGiB: g, cpuRatio: g.encrypted / g.plain, cpuRatioLessStartup: g.encryptedLessStartup / g.plainLessStartup, wallRatio: cost.ms / plain.ms };
}

const s = (ms: number) => `${(ms / 1000).toFixed(2)}s`;
const cpu = (ms: number) => (ms / 1000).toFixed(2);
const mib = (kib: number) => formatBytes(kib * 1024);

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const fmt = (row: string[]) =>
    head
      .map((_, i) => (row[i] ?? "").padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join("\n") + "\n";
}

function peersTable(results: SizeFigures[]): string {
  const head = [
    "snapshot",
    "(a) stream",
    "(b) vrb backup (transfer)",
    "(c) save + (u) aws s3 cp",
    "b/c",
    "overlap",
    "servers busy in b | b/c floor",
    "peak RSS (b)",
    "CPU-s b | c (kernel)",
    "CPU s/GiB: b (less start-up) | irreducible | (a) | runbook",
    "CPU b/irr. (less start-up | and kernel)",
  ];
  const rows: string[][] = [];
  for (const r of results) {
    const line = (label: string, p: PeerFigures) => [
      `${formatBytes(r.snapshotBytes)}${label}`,
      s(r.a.ms),
      `${s(p.b.ms)} (${(p.b.transferMs / 1000).toFixed(2)})`,
      `${s(p.cMs)} (${(p.save.ms / 1000).toFixed(2)} + ${(p.u.ms / 1000).toFixed(2)})`,
      p.bOverC.toFixed(2),
      p.overlap.toFixed(2),
      `${p.serversBusyInB.toFixed(2)} | ${p.bOverCFloor.toFixed(2)}`,
      mib(p.b.maxRssKiB),
      `${cpu(p.b.cpuMs)} (${cpu(p.b.kernelCpuMs)}) | ${cpu(p.save.cpuMs + p.u.cpuMs)} (${cpu(p.save.kernelCpuMs + p.u.kernelCpuMs)})`,
    ];
    const g = r.cpuSecondsPerGiB;
    rows.push([
      ...line("", r.local),
      `${g.backup.toFixed(2)} (${g.backupLessStartup.toFixed(2)}) | ${g.irreducible.toFixed(2)} | ${g.stream.toFixed(2)} | ${g.runbook.toFixed(2)}`,
      `${r.cpuRatio.toFixed(2)} (${r.cpuRatioLessStartup.toFixed(2)} | ${r.cpuRatioInProcess.toFixed(2)})`,
    ]);
    if (r.unpinned) rows.push(line(" unpinned", r.unpinned));
    if (r.wan) rows.push(line(" WAN", r.wan));
    if (r.faults) rows.push([`${formatBytes(r.snapshotBytes)} (d)`, "", `${s(r.faults.ms)}, ${r.faults.errors} S3 errors`, "", "", "", "", mib(r.faults.maxRssKiB)]);
  }
  return table(head, rows);
}

/**
 * The backup's CPU per GiB between the two sizes: (CPU at the larger - CPU at the smaller) / (GiB
 * larger - GiB smaller). What every run pays once (Node's start-up, the preflight, the lease, the
 * status record, the manifest) cancels out, and so does the noise of a fixed cost; what is left is
 * what each further GiB costs, against the irreducible work's per GiB (their mean over the sizes).
 */
export function marginalCpu(results: SizeFigures[]): { perGiB: number; perGiBLessKernel: number; irreducible: number } | undefined {
  if (results.length < 2) return undefined;
  const [small, large] = [results[0]!, results.at(-1)!];
  const gib = (large.snapshotBytes - small.snapshotBytes) / GiB;
  if (gib <= 0) return undefined;
  const b = (r: SizeFigures) => r.local.b;
  return {
    perGiB: (b(large).cpuMs - b(small).cpuMs) / 1000 / gib,
    perGiBLessKernel: (b(large).cpuMs - b(large).kernelCpuMs - (b(small).cpuMs - b(small).kernelCpuMs)) / 1000 / gib,
    irreducible: (small.cpuSecondsPerGiB.irreducible + large.cpuSecondsPerGiB.irreducible) / 2,
  };
}

function formatMarginal(results: SizeFigures[]): string {
  const m = marginalCpu(results);
  if (!m) return "";
  return (
    `per further GiB (between the two sizes): vrb ${m.perGiB.toFixed(2)} CPU-s, ${(m.perGiB / m.irreducible).toFixed(2)}x the irreducible ${m.irreducible.toFixed(2)}; ` +
    `less the kernel's time ${m.perGiBLessKernel.toFixed(2)} CPU-s, ${(m.perGiBLessKernel / m.irreducible).toFixed(2)}x (target <= 1.3)\n`
  );
}

function encryptedTable(results: SizeFigures[]): string {
  const head = ["(e) snapshot", "format", "wall", "wall e/plain", "peak RSS", "CPU s/GiB e (less start-up)", "plain", "CPU e/plain (less start-up)"];
  const rows: string[][] = [];
  for (const r of results) {
    for (const [format, e] of Object.entries(r.encrypted ?? {})) {
      const g = e.cpuSecondsPerGiB;
      rows.push([
        formatBytes(r.snapshotBytes),
        format,
        s(e.cost.ms),
        e.wallRatio.toFixed(2),
        mib(e.cost.maxRssKiB),
        `${g.encrypted.toFixed(2)} (${g.encryptedLessStartup.toFixed(2)})`,
        `${g.plain.toFixed(2)} (${g.plainLessStartup.toFixed(2)})`,
        `${e.cpuRatio.toFixed(2)} (${e.cpuRatioLessStartup.toFixed(2)})`,
      ]);
    }
  }
  return rows.length ? table(head, rows) : "";
}

function copyTable(results: SizeFigures[]): string {
  const head = [
    "(f) snapshot",
    "S3 alone",
    "Azurite alone",
    "S3 + Azurite copy",
    "ratio",
    "CPU-s vrb: S3 alone | Azurite alone | copy",
    "CPU-s Azurite: alone | copy",
    "CPU 1 busy: Azurite alone | copy",
    "CPU 0 busy: S3 alone | copy",
    "peak RSS: S3 alone | copy",
  ];
  const rows = results.flatMap((r) => {
    const c = r.copy;
    if (!c) return [];
    return [
      [
        formatBytes(r.snapshotBytes),
        s(c.s3Alone.ms),
        s(c.azureAlone.ms),
        s(c.withCopy.ms),
        c.ratio.toFixed(2),
        `${cpu(c.s3Alone.cpuMs)} | ${cpu(c.azureAlone.cpuMs)} | ${cpu(c.withCopy.cpuMs)}`,
        `${cpu(c.azuriteCpuMs.azureAlone)} | ${cpu(c.azuriteCpuMs.withCopy)}`,
        `${cpu1Busy(c.azureAlone, c.azuriteCpuMs.azureAlone)} | ${cpu1Busy(c.withCopy, c.azuriteCpuMs.withCopy)}`,
        `${cpu0Busy(c.s3Alone, c.azuriteCpuMs.s3Alone)} | ${cpu0Busy(c.withCopy, c.azuriteCpuMs.withCopy)}`,
        `${mib(c.s3Alone.maxRssKiB)} | ${mib(c.withCopy.maxRssKiB)}`,
      ],
    ];
  });
  return rows.length ? table(head, rows) : "";
}

/**
 * (vrb's CPU + Azurite's) / the run's wall time: both share CPU 1 in the pinned layout, so 1.00
 * means that core never idled and the run's wall time is their CPU, nothing else.
 */
function cpu1Busy(run: BackupCost, azuriteCpuMs: number): string {
  return ((run.cpuMs + azuriteCpuMs) / run.ms).toFixed(2);
}

/** OpenBao's and SeaweedFS's CPU (the servers' less Azurite, which runs on CPU 1) over the run's wall time. */
function cpu0Busy(run: BackupCost, azuriteCpuMs: number): string {
  return ((run.serversCpuMs - azuriteCpuMs) / run.ms).toFixed(2);
}

/** The start-up line: medians of wall (CPU) seconds; the targets are issue 22's. */
export function formatStartup(st: StartupFigures): string {
  const wc = (c: { ms: number; cpuMs: number }) => `${s(c.ms)} (${cpu(c.cpuMs)} CPU-s)`;
  return (
    `start-up, medians of ${st.runs} runs, wall (CPU): vrb --version ${wc(st.version)} (target <= 0.15s), vrb --help ${wc(st.help)}, ` +
    `vrb list --help ${wc(st.listHelp)}, vrb backup to its first request ${s(st.backupFirstRequestMs)} (target <= 0.2s), node -e 0 ${wc(st.node)}`
  );
}

/** (p) the provider's backup: in the host's Node against a Node of its own. */
function providerTable(results: SizeFigures[]): string {
  const rows = results.flatMap((r) => {
    const p = r.provider;
    if (!p) return [];
    const gib = r.snapshotBytes / GiB;
    return [
      [
        formatBytes(r.snapshotBytes),
        `${s(p.inHost.ms)} | ${s(p.ownProcess.ms)}`,
        `${(p.inHost.cpuMs / 1000 / gib).toFixed(2)} | ${(p.ownProcess.cpuMs / 1000 / gib).toFixed(2)}`,
        `${mib(p.inHost.maxRssKiB)} | ${mib(p.ownProcess.maxRssKiB)}`,
      ],
    ];
  });
  return rows.length ? table(["(p) snapshot", "wall in host | own process", "CPU-s/GiB in host | own", "peak RSS in host | own"], rows) : "";
}

/** Everything the bench prints for a human (the figures themselves go out as JSON with --json). */
export function formatReport(results: SizeFigures[], startup: StartupFigures): string {
  const enc = encryptedTable(results);
  const copy = copyTable(results);
  const provider = providerTable(results);
  return (
    peersTable(results) +
    `(b) is the CLI's wall time, Node start-up (${cpu(startup.version.cpuMs)} CPU-s) and preflight included; (transfer) its one streamed pass alone.\n` +
    "overlap = max(a, u) / b (1.0: the pass is as fast as its slowest side). WAN: S3 behind 20 ms each way, pinned.\n" +
    "unpinned: the same peers with every process free to run on any CPU, as users run them (the machine's other load competes too).\n" +
    "servers busy in b: the servers' CPU during (b) / (b)'s wall time (pinned: 1.00 = their CPU never idle); b/c floor: that CPU / (c), the lowest b/c they allow.\n" +
    "CPU-s b | c (kernel): CPU seconds of the vrb child | of bao + aws (the runbook's clients); in brackets their kernel (system) time, mostly moving bytes through sockets and files.\n" +
    "CPU b/irr.: the backup's CPU per GiB over the irreducible work's; less Node's start-up; and less the kernel's time too (the runbook's clients spend as much there on the same bytes).\n" +
    formatMarginal(results) +
    (enc
      ? `\n${enc}(e): (b) encrypted to a fresh recipient (ciphertext stored), per GiB of snapshot; e/plain against (b) of the same size. Targets: CPU <= 1.3x, wall <= 1.05x plain.\n`
      : "") +
    (copy
      ? `\n${copy}(f): S3 alone, Azurite alone, then S3 with a copy on Azurite in the same pass, one after the other; ratio = with copy / the slower alone (target <= 1.15).\n` +
        "CPU 1 busy: (vrb + Azurite CPU) / wall; near 1.00 the core they share never idled, and the ratio is their CPU with the copy over their CPU to Azurite alone.\n" +
        "CPU 0 busy: (OpenBao + SeaweedFS CPU) / wall; with both cores below 1.00 the run also waits on the hand-offs between the processes, not on CPU alone.\n"
      : "") +
    (provider
      ? `\n${provider}(p): the VaultSnapshot provider's backup in a Node started as Pulumi's dynamic-provider host is (no flags), then in the child Node with vrb's heap settings the provider starts now.\n`
      : "") +
    `\n${formatStartup(startup)}\n` +
    "targets: b/c <= 0.65 pinned, <= 0.9 unpinned; overlap >= 0.85 (WAN), CPU b/irreducible <= 1.3, peak RSS <= 160 MiB flat (docs/benchmarks.md)\n"
  );
}
