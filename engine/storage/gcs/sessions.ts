import { registerSecret } from "../../redact.js";

// Cloud Storage has no listing of unfinished resumable upload sessions (they expire after a week and
// hold no object until their last chunk). The store remembers the sessions this process opened and
// has neither finished nor cancelled, so listIncompleteUploads and abortUploads can name them.

interface OpenSession {
  bucket: string;
  key: string;
  started: Date;
}

const open = new Map<string, OpenSession>();

/** A session was created. Its URI lets anyone who holds it write the object, so it is a secret. */
export function sessionOpened(uri: string, bucket: string, key: string): void {
  registerSecret(uri);
  registerSecret(new URL(uri).searchParams.get("upload_id"));
  open.set(uri, { bucket, key, started: new Date() });
}

/** The session finished (the object exists) or was cancelled. */
export function sessionClosed(uri: string): void {
  open.delete(uri);
}

/** This process's open sessions on `bucket` whose key starts with `prefix`. */
export function openSessions(bucket: string, prefix: string): { uri: string; key: string; started: Date }[] {
  return [...open.entries()].filter(([, s]) => s.bucket === bucket && s.key.startsWith(prefix)).map(([uri, s]) => ({ uri, key: s.key, started: s.started }));
}

/** What is known of a session (its key), when this process opened it. */
export function sessionOf(uri: string): OpenSession | undefined {
  return open.get(uri);
}
