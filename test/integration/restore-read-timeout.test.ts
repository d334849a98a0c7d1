import { afterAll, describe, expect, it } from "vitest";
import { OperationError, SnapshotStore, VaultClient, restoreReportOf, runBackup, stagedRestore } from "../../engine/index.js";
import { startFreshNodes, stopNode, type LocalNode } from "../../engine/throwaway/nodes.js";
import { nodeHealth } from "../../engine/vault/operations.js";
import { s3DestinationOf } from "../../engine/storage/destination.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { policyInSharedBucket } from "../support/restore-fixtures.js";
import { policyStoreOn, s3For, s3StoreOn, sharedEnv, tempDir } from "../support/env.js";

// A restore whose upload outlasts the target listener's http_read_timeout: OpenBao stops reading
// the body and the restore must say so, with the setting to raise. One throwaway node with a 1s
// read timeout (NOT OpenBao's 30s default) behind a proxy that sends the upload slowly; the
// snapshot is a backup of the shared cluster.
const shared = sharedEnv();
const s3 = s3For(shared);
const prefix = `restore-rt-${Date.now().toString(36)}/`;
let target: LocalNode | undefined;
let proxy: FaultProxy | undefined;

afterAll(async () => {
  await proxy?.stop();
  if (target) await stopNode(target);
  s3.destroy();
});

describe("restore upload cut by the listener's http_read_timeout (real OpenBao, real S3 server)", () => {
  it("fails with what happened, the listener setting to raise, the command to run again and every node's state; the snapshot is not applied", async () => {
    const policy = policyInSharedBucket(
      shared,
      prefix,
      "rt-src",
      shared.nodes.map((n) => n.apiAddr),
    );
    const backup = await runBackup({ policy, token: shared.keys!.rootToken, store: policyStoreOn(s3, policy) });
    [target] = await startFreshNodes(tempDir("restore-rt"), 1, { idPrefix: "rt", shape: { httpReadTimeout: "1s" } });
    // The upload goes at a sixth of the snapshot per second: ~6s against a 1s read timeout.
    proxy = await new FaultProxy(target!.apiAddr).start();
    proxy.rules = [
      {
        match: (req, url) => req.method === "POST" && url.pathname.endsWith("/snapshot-force"),
        share: 1,
        fault: { kind: "throttle", bytesPerSec: Math.max(1024, Math.ceil(backup.bytes / 6)) },
      },
    ];
    const lines: string[] = [];

    const err = await stagedRestore({
      mode: "rebuild",
      nodes: [proxy.url],
      store: new SnapshotStore(s3StoreOn(s3, s3DestinationOf(policy.destination, "this test").bucket, prefix)),
      snapshot: `s3://${backup.bucket}/${backup.key}`,
      keys: { kind: "unseal", keys: shared.keys!.unsealKeysB64, threshold: shared.keys!.threshold },
      progress: { info: (m) => lines.push(m), warn: (m) => lines.push(m) },
    }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(OperationError);
    expect((err as OperationError).exitCode).toBe(1);
    const message = (err as Error).message;
    expect(message).toMatch(/stopped reading the snapshot upload after \d+(\.\d)? s with an i\/o timeout \(about its listener.s http_read_timeout\)/);
    expect(message).toContain("http_read_timeout (30s by default)");
    expect(message).toMatch(/listener "tcp" stanza of every target node \(e\.g\. http_read_timeout = "\d+m"\)/);
    expect(message).toContain("did not arrive in time: the snapshot was not applied");
    expect(message).toContain(`vrb restore s3://${backup.bucket}/${backup.key} --nodes ${proxy.url}`);
    // The node states and the next step of the phase the restore reached (node 1 has only a throwaway keyring).
    expect(message).toMatch(/nodes now:\n {2}.*127\.0\.0\.1.*active/);
    expect(message).toContain("was initialised with a throwaway keyring and holds none of the snapshot's data");
    const report = restoreReportOf(err)!;
    expect(report.steps.find((s) => s.result === "failed")?.step).toBe("restore snapshot (snapshot-force)");
    expect(proxy.stats.injected.throttle).toBe(1);

    // Nothing of the snapshot reached the node: it still serves the throwaway cluster, not the source's.
    const direct = new VaultClient({ addr: target!.apiAddr });
    const health = await nodeHealth(direct);
    expect(health.role).toBe("active");
    const source = await nodeHealth(new VaultClient({ addr: shared.nodes[0]!.apiAddr }));
    expect(health.clusterId).not.toBe(source.clusterId);
    await direct.close();
  });
});
