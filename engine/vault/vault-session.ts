import type { AuthMethod } from "../policy.js";
import type { Progress } from "../progress.js";
import type { VaultClient } from "./client.js";
import type { LoginAuth, LoginRequest } from "./login-methods.js";

export interface VaultSession {
  readonly token: string;
  readonly method: AuthMethod;
  /** Auth mount of a login; absent for a handed-in token. */
  readonly mount?: string;
  /** true: the kit logged in; the token is renewed and revoked by `close`. */
  readonly obtained: boolean;
  /** Where the token came from, for messages: "VAULT_TOKEN", "approle login at auth/approle", ... */
  readonly source: string;
  readonly accessor?: string;
  /** TTL the login granted, in seconds (0: no expiry or unknown). */
  readonly ttlSeconds: number;
  /** Successful renewals so far. */
  readonly renewals: number;
  /** Stops renewing; revokes a token the kit obtained. Safe to call twice; never throws. */
  close(): Promise<void>;
}

/** The session of a handed-in token: the kit neither renews nor revokes what it did not obtain. */
export function handedInSession(token: string, source: string): VaultSession {
  return { token, method: "token", obtained: false, source, ttlSeconds: 0, renewals: 0, close: async () => undefined };
}

/** Renews before 2/3 of the TTL: at half of it, so one failed attempt still leaves time for another. */
const RENEW_AT = 0.5;

/** The session of a token the kit logged in for: renewed in the background, revoked by `close`. */
export class LoginSession implements VaultSession {
  readonly token: string;
  readonly method: AuthMethod;
  readonly mount: string;
  readonly obtained = true;
  readonly source: string;
  readonly accessor?: string;
  readonly ttlSeconds: number;
  renewals = 0;
  private readonly client: VaultClient;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private expiresAt: number;
  private renewing?: Promise<void>;

  constructor(
    client: VaultClient,
    req: LoginRequest,
    auth: LoginAuth,
    private readonly progress: Progress,
    renew: boolean,
  ) {
    this.client = client;
    this.client.setToken(auth.client_token);
    this.token = auth.client_token;
    this.method = req.method;
    this.mount = req.mount;
    this.source = `${req.method} login at auth/${req.mount}`;
    this.accessor = auth.accessor;
    this.ttlSeconds = auth.lease_duration ?? 0;
    this.expiresAt = Date.now() + this.ttlSeconds * 1000;
    if (renew && auth.renewable && this.ttlSeconds > 0) this.schedule(this.ttlSeconds * RENEW_AT * 1000);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(
      () => {
        this.renewing = this.renewOnce().finally(() => (this.renewing = undefined));
      },
      Math.max(ms, 200),
    );
    this.timer.unref();
  }

  private async renewOnce(): Promise<void> {
    try {
      const res = await this.client.post<{ auth?: { lease_duration?: number; renewable?: boolean } }>("auth/token/renew-self", {}, { idempotent: true, timeoutMs: 10_000 });
      const ttl = res.body?.auth?.lease_duration ?? 0;
      this.renewals++;
      this.expiresAt = Date.now() + ttl * 1000;
      if (ttl <= 0 || res.body?.auth?.renewable === false) {
        this.progress.warn(`the ${this.source} token (accessor ${this.accessor ?? "?"}) can no longer be renewed; it expires in ${ttl}s`);
        return;
      }
      this.schedule(ttl * RENEW_AT * 1000);
    } catch (err) {
      const left = this.expiresAt - Date.now();
      this.progress.warn(`renewing the ${this.source} token (accessor ${this.accessor ?? "?"}) failed: ${err instanceof Error ? err.message : String(err)}`);
      if (left > 2_000) this.schedule(Math.min(5_000, left / 3));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.renewing?.catch(() => undefined);
    try {
      await this.client.post("auth/token/revoke-self", {}, { idempotent: true, timeoutMs: 10_000 });
      this.progress.info(`revoked the ${this.source} token (accessor ${this.accessor ?? "?"})`);
    } catch (err) {
      this.progress.warn(
        `could not revoke the ${this.source} token (accessor ${this.accessor ?? "?"}): ${err instanceof Error ? err.message : String(err)}; it expires by itself, or revoke it by accessor`,
      );
    } finally {
      await this.client.close().catch(() => undefined);
    }
  }
}
