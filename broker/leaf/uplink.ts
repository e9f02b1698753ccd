/**
 * broker/leaf/uplink.ts: one configured remote (a hub and its cluster's other leafnode
 * URLs): which URL to dial next, the back-off between attempts, the local interest to
 * announce, and at most one live LeafConnection (connection.ts).
 *
 * Dialling: the URLs in turn, the configured ones first, then those the hubs' INFOs
 * name (`leafnode_urls`, the cluster's). A lost connection is redialled at once, on the
 * next URL; each failed attempt waits `reconnectDelayMs`, doubling per failure up to
 * `maxReconnectDelayMs`; an established connection resets it. Timers run on the broker's
 * Clock (a FakeClock in tests). A remote that found a loop (the same cluster reached
 * through another uplink of this broker) stands by: it waits `loopDelayMs`, or less if
 * another uplink is lost first.
 *
 * Interest: every local subscription, clipped to the `import` bounds (bounds.ts), counts
 * towards a key ('subject' or 'subject queue'); a key announced is LS+ (a queue key with
 * its count as weight, sent again whenever it changes), LS- when its count falls to 0.
 * All of it is announced again on each new connection.
 *
 * TLS (the remote's `tls`, or `tls://` URLs): as nats-server's leafnodes, the hub's INFO
 * comes in plain text saying `tls_required`, then the connection upgrades the same socket
 * (connection.ts); with `handshakeFirst` the dialer runs the handshake before anything is
 * read. Either way the hub's certificate is checked, and a failed handshake is a failed
 * attempt like a refused connect, its OpenSSL reason in `lastError`.
 *
 * Threading: the broker's thread.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { Timer } from '../../runtime/clock.js';
import type { Link } from '../../transports/link.js';
import { Policy } from '../../transports/protocol/index.js';
import { parsePolicy } from '../policy.js';
import type { SessionHost } from '../host.js';
import type { Subscription } from '../subscription.js';
import { NatsLink } from '../nats/listener.js';
import { Bounds } from './bounds.js';
import { LeafConnection, isTlsError, tlsFailure, type ConnectionOwner, type UplinkStats } from './connection.js';
import type { LeafRemoteOptions } from './config.js';
import { parseUserSeed, signNonce, type UserSeed } from './nkey.js';
import { loadRemoteSecrets, type Credentials, type LeafTls, type RemoteSecrets } from './secrets.js';
import { clientHandshake } from '../../transports/tls.js';

/**
 * Opens a TCP connection to host:port within timeoutMs, and with `tls` (handshake first)
 * runs the TLS handshake on it before anything is read; tests pass their own.
 */
export type Dialer = (host: string, port: number, timeoutMs: number, remote: string, tls: tls.ConnectionOptions | null) => Promise<Link>;

export const DEFAULT_MAX_PENDING = 8 * 1024 * 1024;

/** What the uplinks of one broker share (index.ts). */
export interface UplinkGroup {
  readonly lds: string;
  readonly reconnectDelayMs: number;
  readonly maxReconnectDelayMs: number;
  readonly loopDelayMs: number;
  /** Numbers connections in the order they were established. */
  nextSeq(): number;
  /** This broker's $LDS came back on `c`: decide which uplink gives way. */
  loop(u: Uplink, c: LeafConnection): void;
  /** An uplink lost its connection (not for a loop): standing-by uplinks may try now. */
  lost(u: Uplink): void;
}

export type UplinkState = 'dialing' | 'handshake' | 'connected' | 'waiting' | 'standby' | 'closed';

export class Uplink implements ConnectionOwner {
  readonly name: string;
  readonly imports: Bounds;
  readonly exports: Bounds;
  readonly policy: Policy;
  readonly maxPending: number;
  readonly urls: string[];
  readonly interest = new Map<string, number>();
  readonly stats: UplinkStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, dropped: 0, refused: 0, loops: 0, connects: 0 };
  state: UplinkState = 'waiting';
  conn: LeafConnection | null = null;
  /** Index into `urls` of the URL dialled last. */
  current = -1;
  failures = 0;
  /** Why the last connection or attempt ended, for monitoring. */
  lastError = '';
  /** Delays waited so far (monitoring and tests read the last one). */
  lastDelayMs = 0;
  private timer: Timer | null = null;
  private attempt = 0;
  /** The remote's `nkey` seed, parsed once. */
  private readonly seed: UserSeed | null;
  private readonly creds: Credentials | null;
  /** TLS to every URL of this remote, or null (ConnectionOwner). */
  readonly tls: LeafTls | null;

  constructor(
    readonly index: number,
    private readonly o: LeafRemoteOptions,
    readonly host: SessionHost,
    private readonly group: UplinkGroup,
    private readonly dial: Dialer = dialTcp,
    secrets: RemoteSecrets = loadRemoteSecrets(o, `leafnodes.remotes[${index}]`),
  ) {
    this.name = o.name ?? `leaf${index}`;
    this.imports = new Bounds(o.import);
    this.exports = new Bounds(o.export);
    this.policy = parsePolicy(o.policy ?? 'drop-oldest') ?? Policy.DROP_OLDEST;
    this.maxPending = o.maxPending ?? DEFAULT_MAX_PENDING;
    this.urls = [...o.urls];
    this.seed = o.nkey !== undefined ? parseUserSeed(o.nkey) : null;
    this.creds = secrets.credentials;
    this.tls = secrets.tls;
  }

  get lds(): string {
    return this.group.lds;
  }

  /** The URL of the live connection (or the one being tried). */
  get url(): string {
    return this.current >= 0 ? this.urls[this.current]! : '';
  }

  start(): void {
    this.dialNext();
  }

  /** CONNECT's credentials: user/pass (a URL's userinfo first), a token, an nkey's or a .creds file's signature of the hub's nonce (and its JWT). */
  credentials(nonce: string): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.creds !== null) {
      out.jwt = this.creds.jwt;
      out.sig = signNonce(this.creds.seed, nonce);
    }
    if (this.seed !== null) {
      out.nkey = this.seed.publicKey;
      out.sig = signNonce(this.seed, nonce);
    }
    const u = urlCredentials(this.url);
    const user = u.user ?? this.o.user;
    const pass = u.pass ?? this.o.pass;
    if (user !== undefined) out.user = user;
    if (pass !== undefined) out.pass = pass;
    if (this.o.token !== undefined) out.auth_token = this.o.token;
    return out;
  }

  // --- local interest --------------------------------------------------------------------

  interestChanged(sub: Pick<Subscription, 'pattern' | 'queue'>, delta: 1 | -1): void {
    for (const p of this.imports.clip(sub.pattern)) {
      const key = sub.queue === '' ? p : `${p} ${sub.queue}`;
      const before = this.interest.get(key) ?? 0;
      const n = Math.max(0, before + delta);
      if (n > 0) this.interest.set(key, n);
      else this.interest.delete(key);
      // Plain interest is news only when it starts or ends; a queue's weight is news at every change.
      if (this.conn !== null && (sub.queue !== '' || (before === 0) !== (n === 0))) this.conn.announce(key, n);
    }
  }

  // --- connections -----------------------------------------------------------------------

  private dialNext(): void {
    if (this.state === 'closed') return;
    this.timer = null;
    this.current = (this.current + 1) % this.urls.length;
    const url = this.urls[this.current]!;
    const { hostname, port } = new URL(url);
    const attempt = ++this.attempt;
    this.state = 'dialing';
    const host = hostname.replace(/^\[|\]$/g, '');
    const first = this.tls !== null && this.tls.handshakeFirst ? this.tls.connectOptions(host) : null;
    this.dial(host, Number(port), this.host.options.handshakeTimeoutMs, url, first).then(
      (link) => {
        if (attempt !== this.attempt || this.state === 'closed') return link.destroy();
        this.state = 'handshake';
        const c = new LeafConnection(this.index, link, url, this);
        this.conn = c;
        link.start(c);
      },
      (err: Error) => {
        if (attempt !== this.attempt || this.state === 'closed') return;
        this.failed(first !== null && isTlsError(err) ? tlsFailure(url, err) : `cannot connect to ${url}: ${err.message}`);
      },
    );
  }

  /** An attempt failed (or a connection was lost before it was established): wait, doubling. */
  private failed(reason: string): void {
    this.lastError = reason;
    this.failures++;
    const delay = Math.min(this.group.reconnectDelayMs * 2 ** Math.min(this.failures - 1, 30), this.group.maxReconnectDelayMs);
    this.host.log.debug({ leaf: this.name, reason, delayMs: delay }, 'leafnode connect failed');
    this.wait('waiting', delay);
  }

  private wait(state: UplinkState, ms: number): void {
    this.state = state;
    this.lastDelayMs = ms;
    this.host.clock.clear(this.timer);
    this.timer = this.host.clock.timeout(() => this.dialNext(), ms);
  }

  established(c: LeafConnection): void {
    c.seq = this.group.nextSeq();
    this.failures = 0;
    this.state = 'connected';
    this.lastError = '';
    this.host.log.info({ leaf: this.name, url: c.url, hub: c.hub?.server_name ?? c.hub?.server_id }, 'leafnode connected');
  }

  learned(urls: readonly string[]): void {
    for (const u of urls) {
      const url = /^[a-z]+:\/\//i.test(u) ? u : `nats://${u}`;
      const key = hostPort(url);
      if (key !== null && !this.urls.some((x) => hostPort(x) === key)) this.urls.push(url);
    }
  }

  loop(c: LeafConnection): void {
    this.group.loop(this, c);
  }

  closed(c: LeafConnection, reason: string, loop: boolean): void {
    if (this.conn !== c) return;
    this.conn = null;
    this.lastError = reason;
    if (this.state === 'closed') return;
    const wasUp = this.state === 'connected';
    this.host.log.warn({ leaf: this.name, url: c.url, reason }, 'leafnode connection closed');
    if (loop) {
      this.wait('standby', this.group.loopDelayMs);
      return;
    }
    if (wasUp) {
      this.group.lost(this);
      this.dialNext(); // at once, on the next URL
    } else this.failed(reason);
  }

  /** A standing-by (looped) uplink: try again now, another uplink was lost. */
  wake(): void {
    if (this.state !== 'standby') return;
    this.host.clock.clear(this.timer);
    this.dialNext();
  }

  close(): Promise<void> {
    this.state = 'closed';
    this.host.clock.clear(this.timer);
    this.timer = null;
    const c = this.conn;
    if (c === null) return Promise.resolve();
    c.shutdown();
    return c.done;
  }

  metrics() {
    const c = this.conn;
    return {
      name: this.name,
      state: this.state,
      url: c?.url ?? this.url,
      urls: [...this.urls],
      hub: c?.hub ? { server_id: c.hub.server_id ?? '', server_name: c.hub.server_name ?? '', cluster: c.hub.cluster ?? '' } : null,
      connectedAt: c !== null && this.state === 'connected' ? c.connectedAt : null,
      rttUs: c !== null && c.rttMs >= 0 ? Math.round(c.rttMs * 1000) : null,
      localInterest: this.interest.size,
      remoteInterest: c?.remoteInterest.size ?? 0,
      pendingBytes: c?.out.pendingBytes ?? 0,
      failures: this.failures,
      lastError: this.lastError,
      ...this.stats,
    };
  }
}

/** user and pass from a nats://user:pass@host URL. */
function urlCredentials(url: string): { user?: string; pass?: string } {
  if (url === '') return {};
  const u = new URL(url);
  if (u.username === '') return {};
  return { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
}

function hostPort(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port}`;
  } catch {
    return null;
  }
}

/** The real dialer: a TCP socket (TLS from the first byte with `secure`), wrapped as a NatsLink (chunks to the handler, smart batching of writes). */
export function dialTcp(host: string, port: number, timeoutMs: number, remote: string, secure: tls.ConnectionOptions | null): Promise<Link> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    const started = Date.now();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      if (secure === null) return resolve(new NatsLink(socket, 'tcp', remote, 0));
      clientHandshake(socket, secure, Math.max(1, timeoutMs - (Date.now() - started)), (s) => resolve(new NatsLink(s, 'tls', remote, 0)), reject);
    });
  });
}
