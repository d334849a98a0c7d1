// Node's heap settings for the processes that stream a snapshot (the vrb CLI, the providers' backup
// process). Node built-ins only: the CLI's launcher imports it before anything else loads.

/**
 * V8's heap settings for a streamed pass, which V8 reads only at start-up (v8.setFlagsFromString
 * comes too late), as they stand on the CLI's interpreter line (scripts/vrb.ts) and as the Pulumi providers start
 * the processes of their streamed work with them (engine/own-process/run.ts):
 * - 1 MiB young-generation semi-spaces instead of up to 16 MiB. A pass allocates its chunk buffers
 *   (outside V8's heap) at a high rate and they are freed by the young generation's collections,
 *   which come after a fixed amount of allocation inside the heap: the smaller the young generation,
 *   the fewer dead buffers wait (16 MiB: 30 MiB more peak RSS; 2 MiB: 10-15 MiB more than 1 MiB
 *   since the archive check writes to zlib in batches; docs/benchmarks.md).
 * - A 64 MiB old-generation limit to start with. V8 counts the chunk buffers' bytes (outside its
 *   heap) against that limit, and the limit V8 derives from our ~17 MiB heap was reached by the
 *   buffers in flight alone: up to 140 full collections in one 1 GiB backup, each freeing nothing,
 *   1-3 CPU-s, and more or fewer from run to run. 48 MiB was enough in every run measured, 32 not.
 *   Peak RSS does not move: the buffers are freed by the young generation's collections.
 */
export const BOUNDED_HEAP_FLAGS = ["--max-semi-space-size=1", "--initial-old-space-size=64"] as const;
