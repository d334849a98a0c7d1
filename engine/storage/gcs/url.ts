/** gs://bucket/key: the URL an operator reads and passes back. */
export function gcsUrl(bucket: string, key = ""): string {
  return `gs://${bucket}/${key}`;
}

/** The bucket and key of a gs:// reference; undefined when it is not one (or names no object). */
export function parseGcsUrl(ref: string): { container: string; key: string } | undefined {
  const m = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])\/(.+)$/.exec(ref);
  return m ? { container: m[1]!, key: m[2]! } : undefined;
}
