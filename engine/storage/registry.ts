import type { Destination, StoreType } from "./destination.js";
import { destinationNameOf, storeTypeOf } from "./destination.js";
import { DEFAULT_STORE_TIMEOUT_SECONDS, withAnswerDeadline } from "./answer-deadline.js";
import type { ObjectStore } from "./object-store.js";

/** What every store's opener is given besides its destination. */
export interface OpenStoreOptions {
  /** The destination's name in messages and reports (default: its `name`, else `primary`). */
  name?: string;
  /** Told when a request has gone unanswered for a while, before its deadline (withAnswerDeadline). */
  onWaiting?: (message: string) => void;
}

type Opener<T extends StoreType> = (destination: Extract<Destination, { type?: T }>, name: string) => ObjectStore;

// One line per store. Each store's module is imported only when a destination of its type is
// opened, so a run against S3 never loads the Azure or Google SDKs.
const openers: { [T in StoreType]: () => Promise<Opener<T>> } = {
  s3: async () => (await import("./s3/open.js")).openS3Store,
  file: async () => (await import("./file/open.js")).openFileStore,
  gcs: async () => (await import("./gcs/open.js")).openGcsStore,
  azure: async () => (await import("./azure/open.js")).openAzureStore,
};

/** Opens the store a destination names: the one way the CLI, the providers and the engine get one. */
export async function openStore(destination: Destination, opts: OpenStoreOptions = {}): Promise<ObjectStore> {
  const type = storeTypeOf(destination);
  const open = (await openers[type]()) as Opener<StoreType>;
  const store = open(destination as Extract<Destination, { type?: StoreType }>, opts.name ?? destinationNameOf(destination));
  return withAnswerDeadline(store, destination.timeoutSeconds ?? DEFAULT_STORE_TIMEOUT_SECONDS, opts.onWaiting);
}
