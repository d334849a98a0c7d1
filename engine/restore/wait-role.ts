import type { VaultClient } from "../vault/client.js";
import { nodeHealth, type NodeHealth } from "../vault/operations.js";
import type { StepLog, WaitStatus } from "./steps.js";

/**
 * A restore step that waits until the node reports one of `roles` in sys/health. `sized`: the
 * wait grows with the snapshot (steps.ts Deadlines); `status` feeds its still-waiting lines.
 */
export async function waitRole(
  log: StepLog,
  client: VaultClient,
  addr: string,
  roles: NodeHealth["role"][],
  step: string,
  opts: { sized?: boolean } & WaitStatus = {},
): Promise<NodeHealth> {
  return log.run(
    step,
    addr,
    (c) =>
      c.until(
        `${addr} to be ${roles.join(" or ")}`,
        async () => {
          const h = await nodeHealth(client);
          return roles.includes(h.role) ? h : undefined;
        },
        100,
        { status: opts.status },
      ),
    { sized: opts.sized },
  );
}
