import { randomBytes } from "node:crypto";

// Block ids of one blob must all have the same length. Ours are "vrb" + the upload's 12 hex
// digits + the part number in 6 digits: 21 bytes, 28 base64 characters without padding. The
// upload id in them is what lets a clean-up (and `vrb list`) tell this run's blocks from any other's.

/** Azure's limit of blocks in one blob. */
export const MAX_BLOCKS = 50_000;

/**
 * What an abort stages in place of each of an upload's blocks (same id): Azure has no call that
 * discards uncommitted blocks, but a block staged again replaces the one of that id, so the data
 * is gone at once and only these bytes wait for Azure's 7-day clean-up. An upload whose blocks are
 * all this size is an aborted one (uploads use parts of at least 2 bytes, upload.ts).
 */
export const TOMBSTONE = Buffer.from([0]);

export function isTombstone(block: { size: number }): boolean {
  return block.size === TOMBSTONE.length;
}

const PATTERN = /^vrb([0-9a-f]{12})(\d{6})$/;

/** A fresh id for one upload. */
export function newUploadId(): string {
  return randomBytes(6).toString("hex");
}

export function blockId(uploadId: string, part: number): string {
  return Buffer.from(`vrb${uploadId}${String(part).padStart(6, "0")}`).toString("base64");
}

/** The upload and part a block id names, or undefined for a block another tool staged. */
export function parseBlockId(id: string): { uploadId: string; part: number } | undefined {
  const m = PATTERN.exec(Buffer.from(id, "base64").toString("latin1"));
  return m ? { uploadId: m[1]!, part: Number(m[2]) } : undefined;
}
