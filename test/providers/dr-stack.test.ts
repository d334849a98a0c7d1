import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { packageRoot } from "../../engine/index.js";
import { sharedEnv } from "../support/env.js";
import { plainOccurrences, runHarness } from "./support.js";

interface Res {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  dependsOn: string[];
}
interface Run {
  error?: string;
  resources: Res[];
}

function stackConfig(file: string): Record<string, unknown> {
  const doc = parse(readFileSync(join(packageRoot(), "stacks", "dr", file), "utf8")) as { config: Record<string, unknown> };
  return doc.config;
}

// Throwaway values shaped like the real ones; the assertions search for them.
const KEYS = ["q2xvY2FsLWtleS1vbmUtMTIzNDU2Nzg5MA==", "q2xvY2FsLWtleS10d28tMTIzNDU2Nzg5MA==", "q2xvY2FsLWtleS10aHJlZS0xMjM0NTY3OA=="];
const SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAthrowawayDRtestKEY\n-----END OPENSSH PRIVATE KEY-----";
const SECRETS = { "vault-raft-backup-dr:unsealKeys": KEYS.join("\n"), "vault-raft-backup-dr:sshPrivateKey": SSH_KEY };

const runDr = (config: Record<string, unknown>, secretKeys: string[], preview = true) => runHarness<Run>("dr-program.mjs", { config, secretKeys, preview });

describe("DR stack program (mocks)", () => {
  it("prod example: SSH reset of every node, then StagedRestore from latest that depends on all of them; secrets stay secret", async () => {
    const run = await runDr({ ...stackConfig("Pulumi.dr.yaml"), ...SECRETS, "vault-raft-backup-dr:confirm": "prod" }, Object.keys(SECRETS));
    expect(run.error).toBeUndefined();
    const resets = run.resources.filter((r) => r.type === "command:remote:Command");
    expect(resets.map((r) => r.name)).toEqual(["reset-node-1", "reset-node-2", "reset-node-3"]);
    const script = resets[1]!.inputs.create as string;
    expect(script.split("\n")).toEqual(["set -e", "sudo systemctl stop openbao", "sudo rm -rf /opt/openbao/data/raft /opt/openbao/data/vault.db", "sudo systemctl start openbao"]);
    expect(JSON.stringify(resets[1]!.inputs.connection)).toContain("vault-1.prod.example.com");

    const restore = run.resources.find((r) => r.type === "pulumi-nodejs:dynamic/vault-raft-backup:StagedRestore")!;
    expect(restore.name).toBe("prod-restore");
    expect(restore.dependsOn.sort()).toEqual(["reset-node-1", "reset-node-2", "reset-node-3"]);
    expect(restore.inputs).toMatchObject({ snapshot: "latest", mode: "rebuild", confirm: "prod" });
    expect(restore.inputs.nodes).toEqual(["https://vault-0.prod.example.com:8200", "https://vault-1.prod.example.com:8200", "https://vault-2.prod.example.com:8200"]);
    for (const secret of [...KEYS, SSH_KEY]) {
      for (const r of run.resources) expect(plainOccurrences(r.inputs, secret), `${secret.slice(0, 12)}… in ${r.name}`).toEqual([]);
    }
    // The secrets were really passed (wrapped), so the search above is not vacuous.
    expect(JSON.stringify(restore.inputs.unsealKeys)).toContain(KEYS[0]);
    expect(JSON.stringify(resets[0]!.inputs)).toContain("BEGIN OPENSSH");
  });

  it("without reset config: only the restore, depending on nothing", async () => {
    const { "vault-raft-backup-dr:reset": _reset, ...config } = stackConfig("Pulumi.dr.yaml");
    const run = await runDr({ ...config, "vault-raft-backup-dr:unsealKeys": KEYS.join("\n") }, ["vault-raft-backup-dr:unsealKeys"]);
    expect(run.error).toBeUndefined();
    expect(run.resources.map((r) => r.type)).toEqual(["pulumi-nodejs:dynamic/vault-raft-backup:StagedRestore"]);
    expect(run.resources[0]!.dependsOn).toEqual([]);
    expect(run.resources[0]!.inputs.confirm).toBeUndefined();
  });

  it("a bad reset block fails the program, naming the field", async () => {
    const config = stackConfig("Pulumi.dr.yaml");
    const reset = { ...(config["vault-raft-backup-dr:reset"] as object), via: "ssh" };
    const run = await runDr({ ...config, ...SECRETS, "vault-raft-backup-dr:reset": reset }, Object.keys(SECRETS));
    expect(run.error).toMatch(/vault-raft-backup-dr:reset: via must be 'remote' \(SSH\) or 'local'/);
    expect(run.resources).toEqual([]);
  });

  it("local example: local reset commands and the local environment's nodes and (secret) keys", async () => {
    const env = sharedEnv();
    const config = { ...stackConfig("Pulumi.dr-local.yaml"), "vault-raft-backup:localEnvironment": env.dir };
    const run = await runDr(config, []);
    expect(run.error).toBeUndefined();
    const resets = run.resources.filter((r) => r.type === "command:local:Command");
    expect(resets).toHaveLength(3);
    expect(resets[0]!.inputs.create).toContain("local stop-node node-1 --wipe");
    const restore = run.resources.find((r) => r.name === "local-restore")!;
    expect(restore.dependsOn.sort()).toEqual(["reset-node-1", "reset-node-2", "reset-node-3"]);
    expect(restore.inputs.nodes).toEqual(env.nodes.map((n) => n.apiAddr));
    for (const k of env.keys!.unsealKeysB64) {
      for (const r of run.resources) expect(plainOccurrences(r.inputs, k)).toEqual([]);
    }
    expect(JSON.stringify(restore.inputs.unsealKeys)).toContain(env.keys!.unsealKeysB64[0]);
  });
});
