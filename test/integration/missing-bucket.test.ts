import { afterAll, describe, expect, it } from "vitest";
import { runBackup, validatePolicy, type Progress } from "../../engine/index.js";
import { startS3Server, stopS3Server, type LocalS3Server, type S3ServerKind } from "../../devenv/s3server.js";
import { backupOn, cliEnv, runVrb, s3For, s3StoreOn, sharedEnv, tempDir } from "../support/env.js";

// A backup into a bucket that does not exist is a configuration error, found in one request
// before Vault is asked for anything: exit 2 without a retry (the figure is printed), not a snapshot
// streamed into an upload that fails and is retried for minutes.

const env = sharedEnv();
const missing = "vrb-ff-no-such-bucket";

/** What a backup into `missing` said and how long it took, through the CLI. */
async function backupIntoMissing(extraEnv: Record<string, string> = {}) {
  const started = Date.now();
  const r = await runVrb(["backup", "--cluster", "ff-miss", "--bucket", missing, "--retries", "2", "--json"], cliEnv(env, extraEnv), { timeoutMs: 60_000 });
  return { ...r, seconds: (Date.now() - started) / 1000 };
}

function expectRefusedAtOnce(r: Awaited<ReturnType<typeof backupIntoMissing>>): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toContain(`vrb: error [stage: destination]: bucket '${missing}' does not exist (or is not visible to these credentials)`);
  expect(r.stderr).toMatch(/SnapshotBucket component .*check destination\.bucket/);
  // Nothing was asked of Vault: no active node looked up, no snapshot streamed, no retry.
  expect(r.stderr).not.toMatch(/active node|snapshot stream|raft index|retrying/);
  expect(r.stderr).toContain(`warning: the backup run is not recorded: the status object lives in s3://${missing}/ff-miss/vrb-status.json, and the bucket does not exist`);
  expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 2, error: { stage: "destination", kind: "ConfigError" } });
}

describe("backup into a bucket that does not exist", () => {
  let other: LocalS3Server | undefined;
  afterAll(async () => {
    if (other) await stopS3Server(other);
  });

  it(`vrb backup on the shared ${env.s3!.kind} server: exit 2 at stage destination, nothing asked of Vault, no retry`, async () => {
    const r = await backupIntoMissing();
    expectRefusedAtOnce(r);
    console.log(`[missing-bucket] ${env.s3!.kind}: refused in ${r.seconds.toFixed(1)} s`);
  });

  it("the same on the other S3 server kind", async () => {
    const kind: S3ServerKind = env.s3!.kind === "seaweedfs" ? "moto" : "seaweedfs";
    other = await startS3Server(tempDir(`ff-${kind}`), kind);
    const r = await backupIntoMissing({ AWS_ENDPOINT_URL_S3: other.endpoint });
    expectRefusedAtOnce(r);
    console.log(`[missing-bucket] ${kind}: refused in ${r.seconds.toFixed(1)} s`);
  });

  it("runBackup: a ConfigError naming destination.bucket, not retried; the clean-up of a missing bucket's uploads finds nothing to abort", async () => {
    const s3 = s3For(env);
    const warnings: string[] = [];
    const progress: Progress = { info: () => undefined, warn: (m) => warnings.push(m) };
    try {
      const policy = validatePolicy({
        cluster: { name: "ff-miss", nodes: env.nodes.map((n) => n.apiAddr) },
        destination: { bucket: missing, endpoint: env.s3!.endpoint, region: env.s3!.region, forcePathStyle: true },
      });
      const err = await runBackup(backupOn(s3, { policy, token: env.keys!.rootToken, progress, retries: 3 })).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: "ConfigError", exitCode: 2, field: "destination.bucket", stage: "destination" });
      expect(warnings).toEqual([]);

      // A bucket that vanished mid-backup holds no unfinished upload: nothing is left to abort and no
      // error (a clean-up that kept looking until its deadline would end with the listing's error).
      expect(await s3StoreOn(s3, missing).abortUploads("ff-miss/x.snap")).toEqual({ aborted: [], left: [] });
    } finally {
      s3.destroy();
    }
  });
});
