import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BaseSequencer, type Reporter, type TestModule, type TestSpecification } from "vitest/node";

/**
 * How long each test file took in a whole run, in seconds, by `<project>:<path>` (vitest's own cache
 * key): imports, hooks and tests, i.e. the time it holds a worker. Committed, because CI starts from
 * a clean checkout without vitest's cache and would otherwise order files by size.
 * `VRB_TEST_DURATIONS=record npm test` rewrites the entries of the files that ran.
 */
const FILE = "test/support/durations.json";

type Durations = Record<string, number>;

function read(root: string): Durations {
  const path = join(root, FILE);
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Durations) : {};
}

function keyOf(root: string, project: string, moduleId: string): string {
  return `${project}:${relative(root, moduleId).split("\\").join("/")}`;
}

/**
 * Longest file first (LPT), so that the last files to start are short ones and every worker finishes
 * at about the same time; a file with no recorded duration (a new one) goes first, as it may be long.
 * Ties and unknown files keep vitest's own order (its cache, else larger files first).
 */
export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const known = read(root);
    const seconds = (s: TestSpecification) => known[keyOf(root, s.project.name, s.moduleId)] ?? Number.POSITIVE_INFINITY;
    const base = await super.sort(files);
    return base
      .map((spec, i) => ({ spec, i, s: seconds(spec) }))
      .sort((a, b) => (a.s === b.s ? a.i - b.i : b.s > a.s ? 1 : -1))
      .map(({ spec }) => spec);
  }
}

/** With VRB_TEST_DURATIONS=record, writes each file's time in this run into durations.json (others kept). */
export class DurationsReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (process.env.VRB_TEST_DURATIONS !== "record" || modules.length === 0) return;
    const root = modules[0]!.project.config.root;
    const durations = read(root);
    for (const m of modules) {
      const d = m.diagnostic();
      const ms = d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration + d.duration;
      durations[keyOf(root, m.project.name, m.moduleId)] = Math.round(ms / 100) / 10;
    }
    const sorted = Object.fromEntries(Object.entries(durations).sort(([a], [b]) => a.localeCompare(b)));
    writeFileSync(join(root, FILE), `${JSON.stringify(sorted, null, 2)}\n`);
  }
}
