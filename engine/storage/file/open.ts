import type { FileDestination } from "../destination.js";
import type { ObjectStore } from "../object-store.js";
import { FileStore } from "./store.js";

export function openFileStore(destination: FileDestination, name: string): ObjectStore {
  return new FileStore(destination, name);
}
