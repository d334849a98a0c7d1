import type { VaultClient } from "../vault/client.js";
import { nodeHealth, type NodeHealth } from "../vault/operations.js";
import type { StepLog } from "./steps.js";

/** A restore step that waits until the node reports one of `roles` in sys/health. */
export async function waitRole(log: StepLog, client: VaultClient, addr: string, roles: NodeHealth["role"][], step: string): Promise<NodeHealth> {
  return log.run(step, addr, (c) =>
    c.until(`${addr} to be ${roles.join(" or ")}`, async () => {
      const h = await nodeHealth(client);
      return roles.includes(h.role) ? h : undefined;
    }),
  );
}
