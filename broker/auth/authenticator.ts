/**
 * broker/auth/authenticator.ts: who a connection is. Built once from the broker's
 * config (`users`, `tokens`, `anonymous`; validated by config.ts in this folder), asked
 * once per connection by each codec's handshake with what the client presented.
 *
 *  - `users: [{ user, password }]`: the password plain or an scrypt hash (password.ts);
 *  - `users: [{ nkey }]`: an Ed25519 user nkey that must sign the connection's nonce
 *    (nkey.ts; the NATS listener sends the nonce in INFO, the hopbus protocol in a
 *    CHALLENGE frame after a CONNECT that names the nkey);
 *  - `tokens: ["secret" | { token, name }]`: a bearer token, plain or hashed;
 *  - `users: [{ user, certificate: { subject, san } }]`: a TLS client certificate (the
 *    broker option `tls.verify`) whose subject has every attribute of `subject`
 *    ("CN=alice,O=Desk"; attributes not named are not looked at) and, with `san`, carries
 *    that subjectAltName entry ("email:alice@desk.example", "DNS:alice.desk"). Asked only
 *    of a connection that presents no other credentials; one with a verified certificate
 *    that no user claims is refused. First match in `users` order wins;
 *  - `anonymous`: what a connection that presents nothing may do. Absent, with nothing
 *    else configured, the broker is open (every connection has every right, as before
 *    any of this existed); absent or false with any user or token configured, such a
 *    connection is refused; `true` grants every right, `{ permissions, limits }` those.
 *
 * Credentials that are presented are checked even where anonymous connections are
 * allowed: a wrong password is a failure, never a fall-back to anonymous.
 */
import type { KeyObject } from 'node:crypto';
import type { PeerCertificate } from '../../transports/link.js';
import type { RateLimit } from '../ratelimit.js';
import { AuthBackoff, addressOf } from './backoff.js';
import { parseUserNkey, verifyNonce } from './nkey.js';
import { Secret } from './password.js';
import { Permissions, type PermissionsConfig } from './permissions.js';

export interface UserLimits {
  /** Connections this identity may hold at once. */
  maxConnections?: number;
  /** Subscriptions one of its connections may hold (the lower of this and the broker's maxSubscriptions). */
  maxSubscriptions?: number;
  /** Largest payload one of its connections may publish (the lower of this and the broker's maxPayload). */
  maxPayload?: number;
  /**
   * Publish rate of each of its connections, the shape of the broker option `publishRate`
   * (the stricter of this and the broker's, field by field; a client's own request lowers it further).
   */
  publishRate?: RateLimit;
  /** Bytes queued towards one of its connections before it is a slow consumer (the lower of this and the broker's maxPending). */
  maxPending?: number;
}

/** Which TLS client certificates are this user's: every attribute of `subject` ("CN=alice,O=Desk") and, if given, the subjectAltName entry `san`. */
export interface CertificateMatch {
  subject?: string;
  san?: string;
}

export interface UserConfig {
  user?: string;
  password?: string;
  nkey?: string;
  /** A TLS client certificate that identifies this user (no password needed then). */
  certificate?: CertificateMatch;
  permissions?: PermissionsConfig;
  limits?: UserLimits;
}

export interface TokenConfig {
  token: string;
  /** Shown in logs and monitoring instead of the token (default "token #i"). */
  name?: string;
  permissions?: PermissionsConfig;
  limits?: UserLimits;
}

export type AnonymousConfig = boolean | null | { permissions?: PermissionsConfig; limits?: UserLimits };

export interface AuthConfig {
  users?: UserConfig[];
  tokens?: Array<string | TokenConfig>;
  anonymous?: AnonymousConfig;
}

/** What a client presented in CONNECT (any of it may be missing). */
export interface Credentials {
  user?: string;
  pass?: string;
  token?: string;
  nkey?: string;
  sig?: string;
}

/** Who a connection is, and what it may do; one object per configured identity, shared by its connections. */
export class Identity {
  /** Connections open as this identity. */
  connections = 0;
  constructor(
    /** The user name, the token's name, the nkey, or "anonymous". */
    readonly name: string,
    readonly kind: 'user' | 'token' | 'nkey' | 'certificate' | 'anonymous',
    /** Null: every right (an open broker, or `anonymous: true`). */
    readonly permissions: Permissions | null,
    readonly limits: Readonly<UserLimits>,
  ) {}

  /** No permissions and no limits checked per message (publishRate and maxPending are the session's, not Access's). */
  get unrestricted(): boolean {
    return this.permissions === null && this.limits.maxPayload === undefined && this.limits.maxSubscriptions === undefined;
  }

  /** Limits the session applies itself (its publish rate, its outbound bound): a connection with them takes no direct delivery, which would bypass both. */
  get sessionLimited(): boolean {
    return this.limits.publishRate !== undefined || this.limits.maxPending !== undefined;
  }
}

/** Why a connection was refused: the text for the client and log, and the name it claimed (never a secret). */
export interface AuthFailure {
  failure: string;
  claimed: string;
}

interface Entry<K> {
  key: K;
  identity: Identity;
}

export class Authenticator {
  private readonly users = new Map<string, Entry<Secret>>();
  private readonly nkeys = new Map<string, Entry<KeyObject>>();
  private readonly tokens: Array<Entry<Secret>> = [];
  /** Users identified by their TLS client certificate, in config order. */
  private readonly certUsers: Array<Entry<{ subject: Array<[string, string]>; san: string | null }>> = [];
  /** The identity of connections that present nothing, or null when they are refused. */
  readonly anonymous: Identity | null;
  /** Any credential is configured, or anonymous connections are refused. */
  readonly required: boolean;
  readonly backoff = new AuthBackoff();
  /** No user, nkey or token is configured: credentials are not looked at (as nats-server ignores them without auth). */
  private readonly open: boolean;
  /** Plain-text secrets in the config: the broker warns about them at startup. */
  readonly plainSecrets: string[] = [];

  constructor(cfg: AuthConfig = {}) {
    for (const u of cfg.users ?? []) {
      const perms = u.permissions ? new Permissions(u.permissions) : new Permissions({});
      if (u.nkey !== undefined) {
        this.nkeys.set(u.nkey, { key: parseUserNkey(u.nkey)!, identity: new Identity(u.nkey, 'nkey', perms, u.limits ?? {}) });
        continue;
      }
      if (u.certificate !== undefined) {
        const identity = new Identity(u.user!, 'certificate', perms, u.limits ?? {});
        this.certUsers.push({ key: { subject: parseSubject(u.certificate.subject ?? ''), san: u.certificate.san ?? null }, identity });
        if (u.password === undefined) continue;
        // A password too: the same user, by either.
        const secret = new Secret(u.password);
        if (!secret.hashed) this.plainSecrets.push(`user "${u.user}"`);
        this.users.set(u.user!, { key: secret, identity });
        continue;
      }
      const secret = new Secret(u.password!);
      if (!secret.hashed) this.plainSecrets.push(`user "${u.user}"`);
      this.users.set(u.user!, { key: secret, identity: new Identity(u.user!, 'user', perms, u.limits ?? {}) });
    }
    (cfg.tokens ?? []).forEach((t, i) => {
      const c: TokenConfig = typeof t === 'string' ? { token: t } : t;
      const secret = new Secret(c.token);
      const name = c.name ?? `token #${i}`;
      if (!secret.hashed) this.plainSecrets.push(name);
      this.tokens.push({ key: secret, identity: new Identity(name, 'token', new Permissions(c.permissions ?? {}), c.limits ?? {}) });
    });
    const any = this.users.size + this.nkeys.size + this.tokens.length + this.certUsers.length > 0;
    const a = cfg.anonymous;
    if (a === false || a === null || (a === undefined && any)) this.anonymous = null;
    else if (a === undefined || a === true) this.anonymous = new Identity('anonymous', 'anonymous', null, {});
    else this.anonymous = new Identity('anonymous', 'anonymous', a.permissions ? new Permissions(a.permissions) : null, a.limits ?? {});
    this.required = this.anonymous === null || any;
    this.open = !any;
  }

  /** nkeys are configured: the NATS listener sends a nonce for them to sign. */
  get wantsNonce(): boolean {
    return this.nkeys.size > 0;
  }

  /**
   * The identity `c` proves, or why not. `remote` and `transport` key the back-off;
   * `nonce` is what an nkey must have signed (null where none was sent); `now` is the clock's;
   * `certificate`, the connection's verified TLS client certificate, if any.
   */
  authenticate(
    c: Credentials,
    remote: string,
    transport: string,
    nonce: string | null,
    now: number,
    certificate: PeerCertificate | null = null,
  ): Identity | AuthFailure {
    const claimed = c.user ?? (c.nkey !== undefined ? c.nkey : c.token !== undefined ? 'token' : certificate !== null ? describeCertificate(certificate) : '');
    const address = addressOf(remote, transport);
    const wait = this.backoff.wait(address, now);
    if (wait > 0) return { failure: `too many failed attempts from this address; try again in ${wait} ms`, claimed };
    const got = this.check(c, nonce, certificate);
    if (typeof got === 'string') {
      this.backoff.failed(address, now);
      return { failure: got, claimed };
    }
    if (got.kind !== 'anonymous') this.backoff.succeeded(address);
    const max = got.limits.maxConnections;
    if (max !== undefined && got.connections >= max) return { failure: `${got.name} already holds its maximum of ${max} connections`, claimed };
    return got;
  }

  private check(c: Credentials, nonce: string | null, certificate: PeerCertificate | null): Identity | string {
    if (this.open) return this.anonymous ?? 'this broker takes no connections (anonymous: false, and no users or tokens)';
    if (c.nkey !== undefined) {
      const e = this.nkeys.get(c.nkey);
      if (e === undefined) return 'unknown nkey';
      if (nonce === null || typeof c.sig !== 'string' || !verifyNonce(e.key, nonce, c.sig)) return 'the nkey signature of the nonce does not verify';
      return e.identity;
    }
    if (c.user !== undefined) {
      const e = this.users.get(c.user);
      // An unknown user gets the same answer as a wrong password: the reply does not tell which it was.
      if (e === undefined || typeof c.pass !== 'string' || !e.key.verify(c.pass)) return 'wrong user or password';
      return e.identity;
    }
    if (c.token !== undefined) {
      for (const t of this.tokens) if (t.key.verify(c.token)) return t.identity;
      return 'unknown token';
    }
    if (certificate !== null && this.certUsers.length > 0) {
      for (const e of this.certUsers) if (certificateMatches(certificate, e.key.subject, e.key.san)) return e.identity;
      return `no user is configured for the client certificate ${describeCertificate(certificate)}`;
    }
    return this.anonymous ?? 'authentication required: this broker takes no anonymous connections';
  }

  /** For the startup log and /varz: what is configured, no secret. */
  toJSON() {
    return {
      users: [...this.users.keys()],
      ...(this.certUsers.length > 0 ? { certificateUsers: this.certUsers.map((e) => e.identity.name) } : {}),
      nkeys: this.nkeys.size,
      tokens: this.tokens.length,
      anonymous: this.anonymous === null ? false : this.anonymous.permissions === null ? true : 'restricted',
    };
  }
}

/** "CN=alice,O=Desk" as [["CN", "alice"], ["O", "Desk"]] (auth/config.ts has checked the shape). */
export function parseSubject(s: string): Array<[string, string]> {
  if (s.trim() === '') return [];
  return s.split(',').map((part) => {
    const eq = part.indexOf('=');
    return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
  });
}

function certificateMatches(c: PeerCertificate, subject: Array<[string, string]>, san: string | null): boolean {
  for (const [k, v] of subject) if (c.subject[k] !== v) return false;
  if (san !== null && !c.altNames.includes(san.replace(/^IP:/, 'IP Address:'))) return false;
  return true;
}

/** The certificate's subject for logs and errors: "CN=alice,O=Desk". */
function describeCertificate(c: PeerCertificate): string {
  return Object.entries(c.subject)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
