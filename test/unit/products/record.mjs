// Records sys/health and sys/seal-status of a REAL server of one product in each state (uninitialised,
// sealed, active, standby) and whether unauthenticated generate-root is served with default listener
// settings, for test/unit/product.test.ts. Run after `npm run build`:
//   node test/unit/products/record.mjs openbao > test/unit/products/openbao.json
//   node test/unit/products/record.mjs vault > test/unit/products/vault.json
// Cluster ids, names, times and nonces are scrubbed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as e from "../../../dist/engine/index.js";
const product = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), `rec-${product}-`));
const get = async (addr, path) => {
  const r = await fetch(`${addr}/v1/${path}`);
  return { status: r.status, body: await r.json() };
};
const scrub = (b) => {
  const c = { ...b };
  for (const k of [
    "server_time_utc",
    "cluster_id",
    "cluster_name",
    "nonce",
    "echo_duration_ms",
    "clock_skew_ms",
    "replication_primary_canary_age_ms",
    "last_request_forwarding_heartbeat_ms",
    "last_wal",
  ])
    if (k in c) c[k] = typeof c[k] === "number" ? 0 : c[k] ? "<scrubbed>" : c[k];
  return c;
};
const out = {};
const nodes = await e.startFreshNodes(dir, 2, { shape: { product } });
try {
  const [a, b] = nodes;
  out.uninitialized = { health: await get(a.apiAddr, "sys/health"), sealStatus: await get(a.apiAddr, "sys/seal-status") };
  const c = new e.VaultClient({ addr: a.apiAddr });
  const init = await e.initialize(c, { kind: "shamir", shares: 1, threshold: 1 });
  out.sealed = { health: await get(a.apiAddr, "sys/health"), sealStatus: await get(a.apiAddr, "sys/seal-status") };
  await e.unseal(c, init.unsealKeysB64, "a");
  c.setToken(init.rootToken);
  await e.waitUntilRole(c, ["active"], "active", 30000);
  out.active = { health: await get(a.apiAddr, "sys/health"), sealStatus: await get(a.apiAddr, "sys/seal-status") };
  const cb = c.forNode(b.apiAddr);
  await e.joinRaft(cb, a.apiAddr);
  await e.unseal(cb, init.unsealKeysB64, "b");
  await e.waitUntilRole(cb, ["standby"], "standby", 30000);
  out.standby = { health: await get(b.apiAddr, "sys/health"), sealStatus: await get(b.apiAddr, "sys/seal-status") };
  const gr = await fetch(`${a.apiAddr}/v1/sys/generate-root/attempt`);
  out.generateRootAttempt = { status: gr.status };
  await c.close();
} finally {
  await Promise.all(nodes.map((n) => e.stopNode(n)));
  rmSync(dir, { recursive: true, force: true });
}
for (const s of Object.values(out)) for (const k of ["health", "sealStatus"]) if (s[k]) s[k].body = scrub(s[k].body);
console.log(JSON.stringify(out, null, 2));
