import { OperationError } from "../../errors.js";
import { storeLabel } from "../../storage/label.js";
import type { ObjectStore, ObjectUpload, UploadOptions, WrittenObject } from "../../storage/object-store.js";
import type { StallBlame } from "./source.js";
import { WritableStage } from "./writable.js";

export interface UploadStageOptions extends Omit<UploadOptions, "beforeComplete"> {
  store: ObjectStore;
  /**
   * The archive gate: the last part and the completion (or the single write) wait for it, so a
   * snapshot whose check fails never becomes an object.
   */
  gate: () => Promise<unknown>;
}

/**
 * The store's streamed upload as a pipeline stage ("upload"): fixed memory (ObjectStore.createUpload),
 * backpressure from the store, completion held back by the archive gate. A failure is the first
 * store error when there was one. `finish` resolves once the object exists (`result`).
 */
export class UploadStage extends WritableStage {
  readonly upload: ObjectUpload;

  constructor(private readonly opts: UploadStageOptions) {
    const { store, gate, ...upload } = opts;
    const sink = store.createUpload({ ...upload, beforeComplete: gate });
    super("upload", sink, (e) => sink.storeError ?? e);
    this.upload = sink;
  }

  override async finish(): Promise<void> {
    await super.finish();
    if (!this.upload.result) {
      throw new OperationError(`the upload of ${this.opts.store.url(await this.opts.key)} ended without an object`, { stage: "upload" });
    }
  }

  /** The stored object (its version and etag), once `finish` resolved. */
  get result(): WrittenObject | undefined {
    return this.upload.result;
  }

  /** For the stall watchdog: names the store while writes wait for it. */
  readonly blame: StallBlame = () =>
    this.upload.waitingForStore ? { stage: "upload", who: `${storeLabel(this.opts.store.type)} (${this.opts.store.url()}) accepted no data` } : undefined;
}
