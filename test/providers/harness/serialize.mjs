// Plain Node (not vitest): construct VaultSnapshot and StagedRestore from the compiled package
// under Pulumi mocks, and print what Pulumi would register: each resource's inputs (secrets stay
// wrapped as the SDK sends them) and the `__provider` text that `dynamic.Resource` serialized.
// Values come on stdin (never argv): { policy, token, unsealKeys, window?, login?, restoreLogin?, restoreMode?, drill? }.
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const input = JSON.parse(readFileSync(0, "utf8"));

const registered = [];
pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call(args) {
      return args.inputs;
    },
  },
  "vrb-providers-test",
  "test",
  false,
);

const { VaultSnapshot, StagedRestore } = await import("vault-raft-backup");
const snap = new VaultSnapshot("snap", { policy: input.policy, token: input.token, window: input.window, login: input.login, drill: input.drill });
const restore = new StagedRestore("restore", {
  policy: input.policy,
  confirm: input.policy.cluster.name,
  unsealKeys: input.unsealKeys,
  login: input.restoreLogin,
  mode: input.restoreMode,
});
await new Promise((resolve) => pulumi.all([snap.urn, snap.id, restore.urn, restore.id]).apply(resolve));
// Let the mock monitor finish every registration.
await new Promise((r) => setTimeout(r, 200));

const out = registered.map((r) => {
  const p = r.inputs.__provider;
  const providerSecret = Boolean(p && typeof p === "object" && p[SIG_KEY] === SECRET_SIG);
  return {
    type: r.type,
    name: r.name,
    inputs: r.inputs,
    provider: providerSecret ? p.value : p,
    providerSecret,
  };
});
process.stdout.write(JSON.stringify(out), () => process.exit(0));
