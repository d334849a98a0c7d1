import { sleep } from "../../wait.js";
import { sessionClosed } from "./sessions.js";
import { timeoutSignal } from "../../timeout-signal.js";

/**
 * Cancels a resumable upload session: DELETE on its URI, which is its own credential (no token is
 * sent). Cloud Storage answers 499 for a cancelled session and 404/410 for one already gone; a
 * 200/201 means it had already finished. Anything else is asked again until `deadline`.
 */
export async function cancelSession(uri: string, deadline: number): Promise<{ cancelled: boolean; error?: string }> {
  let error: string | undefined;
  for (let round = 0; ; round++) {
    try {
      const res = await fetch(uri, { method: "DELETE", headers: { "content-length": "0" }, signal: timeoutSignal(Math.max(1_000, Math.min(15_000, deadline - Date.now()))) });
      await res.body?.cancel();
      if ([499, 404, 410, 200, 201, 204].includes(res.status)) {
        sessionClosed(uri);
        return { cancelled: true };
      }
      error = `HTTP ${res.status}`;
      // Another 4xx will not change with another try.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) return { cancelled: false, error };
    } catch (err) {
      error = err instanceof Error ? ((err.cause as { code?: string } | undefined)?.code ?? err.name) : String(err);
    }
    if (Date.now() + 250 >= deadline) return { cancelled: false, error };
    await sleep(Math.min(250 * 2 ** round, 5_000, Math.max(0, deadline - Date.now())));
  }
}
