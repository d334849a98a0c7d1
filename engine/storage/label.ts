import type { StoreType } from "./destination.js";

const LABELS: Record<StoreType, string> = { s3: "S3", file: "the directory", gcs: "Cloud Storage", azure: "Azure Blob Storage" };

/** What a message calls a store of `type` ("S3 accepted no data", "Cloud Storage refused ..."). */
export function storeLabel(type: StoreType): string {
  return LABELS[type];
}
