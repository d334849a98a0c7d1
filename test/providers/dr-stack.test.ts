import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { packageRoot } from "../../engine/package-info.js";
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

  it("files via remote: one fetch, an install per node (the reset's nodes), then the resets, then the restore from the fetched snapshot; secrets wrapped", async () => {
    const IDENTITY = "AGE-SECRET-KEY-1QQQTHROWAWAYDRFILESTESTIDENTITY0000000000000000000000000000";
    const PASSPHRASE = "throwaway-dr-files-passphrase";
    const secrets = { ...SECRETS, "vault-raft-backup-dr:identity": IDENTITY, "vault-raft-backup-dr:identityPassphrase": PASSPHRASE };
    const files = { via: "remote", owner: "openbao:openbao" };
    const run = await runDr({ ...stackConfig("Pulumi.dr.yaml"), ...secrets, "vault-raft-backup-dr:files": files }, Object.keys(secrets));
    expect(run.error).toBeUndefined();
    expect(run.resources.map((r) => r.name)).toEqual([
      "files-fetch",
      "files-node-1",
      "files-node-2",
      "files-node-3",
      "reset-node-1",
      "reset-node-2",
      "reset-node-3",
      "prod-restore",
    ]);
    const byName = new Map(run.resources.map((r) => [r.name, r]));
    const fetch = byName.get("files-fetch")!;
    expect(fetch.type).toBe("command:local:Command");
    expect(fetch.inputs.create).toMatch(
      /vrb\.js 'files' 'latest' '--bucket' 'example-prod-vault-snapshots' '--prefix' 'vault\/' '--cluster' 'prod' '--out' '-' '--base64' '--json' '--identity' '-'/,
    );
    expect(fetch.inputs.triggers).toEqual(["prod", "latest", "rebuild"]);
    // Its stdout is the decrypted files: the provider must not show it as the step's output.
    expect(fetch.inputs.logging).toBe("stderr");
    // The identity on stdin, its passphrase in the environment: both wrapped, neither in a command string.
    expect(JSON.stringify(fetch.inputs.stdin)).toContain(IDENTITY);
    expect(JSON.stringify(fetch.inputs.environment)).toContain(PASSPHRASE);
    for (const n of [1, 2, 3]) {
      const install = byName.get(`files-node-${n}`)!;
      expect(install.type).toBe("command:remote:Command");
      expect(install.dependsOn).toEqual(["files-fetch"]);
      expect(JSON.stringify(install.inputs.connection)).toContain(`vault-${n - 1}.prod.example.com`);
      expect(install.inputs.create).toContain("base64 -d | sudo tar -x -p -f - -C '/'");
      expect(install.inputs.create).toContain("sudo chown 'openbao:openbao'");
      expect(install.inputs.triggers).toEqual(["prod", "latest", "rebuild"]);
      expect(byName.get(`reset-node-${n}`)!.dependsOn.sort()).toEqual(["files-node-1", "files-node-2", "files-node-3"]);
    }
    const restore = byName.get("prod-restore")!;
    expect(restore.dependsOn.sort()).toEqual(["files-fetch", "files-node-1", "files-node-2", "files-node-3", "reset-node-1", "reset-node-2", "reset-node-3"]);
    // The fetch's report, known only once it ran: the restore's snapshot is that, not a second `latest`.
    expect(restore.inputs.snapshot).not.toBe("latest");
    expect(JSON.stringify(restore.inputs.snapshot)).toContain("Unknown");
    for (const secret of [IDENTITY, PASSPHRASE, SSH_KEY]) {
      for (const r of run.resources) expect(plainOccurrences(r.inputs, secret), `${secret.slice(0, 12)}… in ${r.name}`).toEqual([]);
      for (const r of run.resources) expect(String(r.inputs.create ?? "")).not.toContain(secret);
    }
  });

  it("a bad files block fails the program, naming the field", async () => {
    const config = { ...stackConfig("Pulumi.dr.yaml"), ...SECRETS };
    const bad = async (files: unknown) => (await runDr({ ...config, "vault-raft-backup-dr:files": files }, Object.keys(SECRETS))).error;
    // Side by side: each is a program run of its own.
    const [via, owner, dir] = await Promise.all([bad({ via: "scp" }), bad({ via: "remote", owner: "root; rm -rf /" }), bad({ via: "local", nodes: [{ host: "node-1" }] })]);
    expect(via).toMatch(/vault-raft-backup-dr:files: via must be 'remote' \(SSH\) or 'local'/);
    expect(owner).toMatch(/vault-raft-backup-dr:files: owner must be user or user:group/);
    expect(dir).toMatch(/vault-raft-backup-dr:files: nodes.0.dir is required for via local/);
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
