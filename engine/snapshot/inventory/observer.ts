import type { ArchiveEntryObserver } from "../archive.js";
import { InventoryCounter, type SnapshotInventory } from "./counter.js";
import { StateBinParser } from "./state-bin.js";

export const STATE_BIN = "state.bin";

/**
 * Counts a snapshot's keys from the archive inspector's own pass over `state.bin`: hand
 * `observe` to createArchiveInspector / ArchiveInspectionStage. A state.bin it cannot read does
 * not fail the archive check (SHA256SUMS is the judge of integrity); the inventory is then
 * absent and `problem` says why.
 */
export class StateBinInventory {
  private readonly counter = new InventoryCounter();
  private readonly parser = new StateBinParser((e) => this.counter.add(e));
  private seen = false;
  private done = false;
  problem: string | undefined;

  readonly observe = (name: string): ArchiveEntryObserver | undefined => {
    if (name !== STATE_BIN) return undefined;
    this.seen = true;
    return {
      data: (chunk) => {
        if (this.problem) return;
        try {
          this.parser.write(chunk);
        } catch (err) {
          this.problem = err instanceof Error ? err.message : String(err);
        }
      },
      end: () => {
        if (this.problem) return;
        try {
          this.parser.end();
          this.done = true;
        } catch (err) {
          this.problem = err instanceof Error ? err.message : String(err);
        }
      },
    };
  };

  /** The counts, once the archive was read to its end; undefined (see `problem`) otherwise. */
  result(): SnapshotInventory | undefined {
    if (!this.seen) this.problem ??= `the archive has no ${STATE_BIN}`;
    if (this.problem || !this.done) return undefined;
    return this.counter.result();
  }
}
