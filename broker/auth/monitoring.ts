/**
 * broker/auth/monitoring.ts: who may read the monitoring endpoints (/varz, /connz,
 * /subsz, /latency, /metrics). The broker option
 *
 *   monitoring: { token?: "secret" | "$scrypt$...", users?: ["ops"] }
 *
 * makes every one of them ask for credentials: the token as `Authorization: Bearer
 * <token>` (what Prometheus's `authorization` setting sends) or `?token=<token>` in the
 * URL, or, for a user listed in `users` (a `users` entry with a password), HTTP Basic
 * auth. Anything else is answered 401 and counted. /healthz stays open (load balancers
 * and systemd probe it); the dashboard page and /hopbus.js carry no data and stay open.
 *
 * The token is also a connection token (added to `tokens` when the broker has any
 * users or tokens) that may subscribe to `$SYS.>` and publish nothing else: the
 * dashboard's WebSocket client connects with it (broker/dashboard.ts).
 */
import { AuthBackoff } from './backoff.js';
import type { Authenticator } from './authenticator.js';
import { isHashed, parseHash, Secret } from './password.js';
import type { PermissionsConfig } from './permissions.js';

export interface MonitoringConfig {
  /** A bearer token (plain, or an scrypt hash from `hopbus passwd`). */
  token?: string;
  /** Names of `users` entries (with a password) that may read monitoring with HTTP Basic auth. */
  users?: string[];
}

/** What the monitoring token may do as a connection: read the broker's reports. */
export const MONITOR_PERMISSIONS: PermissionsConfig = { publish: { deny: ['>'] }, subscribe: { allow: ['$SYS.>'] } };

const KEYS = new Set(['token', 'users']);

/** What is wrong with the `monitoring` option's shape, or null. */
export function monitoringOptionProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"monitoring" must be an object { token, users }';
  const m = value as Record<string, unknown>;
  for (const k of Object.keys(m)) if (!KEYS.has(k)) return `"monitoring" has an unknown key "${k}"; known: ${[...KEYS].join(', ')}`;
  if (m.token !== undefined) {
    if (typeof m.token !== 'string' || m.token === '') return '"monitoring.token" must be a non-empty string';
    if (isHashed(m.token)) {
      const p = parseHash(m.token);
      if (typeof p === 'string') return `"monitoring.token": ${p}`;
    }
  }
  if (m.users !== undefined && !(Array.isArray(m.users) && m.users.every((u) => typeof u === 'string' && u !== '')))
    return '"monitoring.users" must be an array of user names';
  if (m.token === undefined && (m.users === undefined || (m.users as unknown[]).length === 0))
    return '"monitoring" needs a "token" or "users": with neither, nobody could read the endpoints';
  return null;
}

/** Decides one HTTP request to a monitoring endpoint. */
export class MonitorGuard {
  private readonly token: Secret | null;
  private readonly users: ReadonlySet<string>;
  private readonly backoff = new AuthBackoff();
  /** The WWW-Authenticate header of a 401. */
  readonly challenge: string;
  /** Whether plain-text token was configured (the broker warns, as for other secrets). */
  readonly plainToken: boolean;

  constructor(
    cfg: MonitoringConfig,
    private readonly auth: Authenticator,
  ) {
    this.token = cfg.token === undefined ? null : new Secret(cfg.token);
    this.plainToken = this.token !== null && !this.token.hashed;
    this.users = new Set(cfg.users ?? []);
    this.challenge = [this.token !== null ? 'Bearer realm="hopbus"' : '', this.users.size > 0 ? 'Basic realm="hopbus", charset="UTF-8"' : '']
      .filter((s) => s !== '')
      .join(', ');
  }

  /**
   * Null when the request may read monitoring; else why not (for the 401's body). `address`
   * is the client's IP address (the back-off's key); `now` the clock's ms.
   */
  check(authorization: string, queryToken: string, address: string, now: number): string | null {
    const wait = this.backoff.wait(address, now);
    if (wait > 0) return `too many failed attempts from this address; try again in ${wait} ms`;
    const why = this.decide(authorization, queryToken, address, now);
    if (why === null) this.backoff.succeeded(address);
    else if (why !== MISSING) this.backoff.failed(address, now);
    return why;
  }

  /** For the startup log and /varz: no secret. */
  toJSON() {
    return { token: this.token !== null, users: [...this.users] };
  }

  private decide(authorization: string, queryToken: string, address: string, now: number): string | null {
    const space = authorization.indexOf(' ');
    const scheme = space > 0 ? authorization.slice(0, space).toLowerCase() : '';
    const value = space > 0 ? authorization.slice(space + 1).trim() : '';
    if (scheme === 'bearer' || (authorization === '' && queryToken !== '')) {
      const given = scheme === 'bearer' ? value : queryToken;
      return this.token !== null && this.token.verify(given) ? null : 'wrong monitoring token';
    }
    if (scheme === 'basic') {
      let text: string;
      try {
        text = Buffer.from(value, 'base64').toString('utf8');
      } catch {
        return 'malformed Basic credentials';
      }
      const colon = text.indexOf(':');
      if (colon < 0) return 'malformed Basic credentials';
      const user = text.slice(0, colon);
      if (!this.users.has(user)) return 'wrong user or password, or the user may not read monitoring';
      const got = this.auth.authenticate({ user, pass: text.slice(colon + 1) }, address, 'http', null, now);
      return 'failure' in got ? 'wrong user or password, or the user may not read monitoring' : null;
    }
    return authorization === '' ? MISSING : `unsupported Authorization scheme "${scheme}"`;
  }
}

const MISSING = 'credentials required: a Bearer token (or ?token=), or Basic auth of a monitoring user';
