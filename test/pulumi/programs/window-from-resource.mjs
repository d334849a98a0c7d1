// A test program for the real Pulumi engine: a VaultSnapshot whose window comes from another
// resource's output, so a first preview has an unknown input (the engine sends the unknown
// sentinel to the provider's check and diff). It imports the package as a user's program does.
// Config: vault-raft-backup:policy (object), vault-raft-backup:vaultToken (secret), vault-raft-backup:window.
import * as pulumi from "@pulumi/pulumi";
import { VaultSnapshot } from "vault-raft-backup";

const config = new pulumi.Config("vault-raft-backup");

/** Outputs `window` = its `value` input, known only once created: unknown in a preview. */
const windowSource = {
  async create(inputs) {
    return { id: `window-${inputs.value}`, outs: { value: inputs.value, window: inputs.value } };
  },
};

class WindowSource extends pulumi.dynamic.Resource {
  constructor(name, value) {
    super(windowSource, name, { value, window: undefined }, {});
  }
}

const source = new WindowSource("window-source", config.require("window"));
const snapshot = new VaultSnapshot("snap", {
  policy: config.requireObject("policy"),
  token: config.requireSecret("vaultToken"),
  window: source.window,
});

export const key = snapshot.key;
export const window = snapshot.window;
export const status = snapshot.status;
