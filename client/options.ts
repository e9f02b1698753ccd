import { OptionsError } from './errors.js';
import { isWaitStrategy, type WaitKind, type WaitStrategy } from '../transports/shm/wait.js';
import { CLIENT_TLS_KEYS, type ClientTlsOptions } from '../transports/tls-options.js';
import { parseUserSeed, signBytes, userNkeyBytes, userSeedBytes, type UserSeed } from '../transports/nkeys.js';

export interface ConnectOptions {
  /** Client name, shown in the broker's logs and monitoring. */
  name?: string;
  /** User name to authenticate with (with `pass`); also taken from a URL's user part, tcp://user:pass@host. */
  user?: string;
  /** Password of `user`. */
  pass?: string;
  /** Token to authenticate with, where the broker is configured with `tokens`. */
  token?: string;
  /**
   * A NATS user nkey seed ('SU...') to authenticate with, where the broker has `{ nkey }`
   * users: the client derives the public key and signs the broker's CHALLENGE with
   * node:crypto's Ed25519. Not in a browser: there, give `nkey` and `sign`.
   */
  seed?: string;
  /** The public user nkey ('U...') to authenticate as, with `sign` (instead of `seed`). */
  nkey?: string;
  /**
   * Signs the broker's nonce for `nkey`: returns (or resolves to) the 64-byte Ed25519
   * signature of exactly the bytes given. Called once per connection, reconnections too.
   */
  sign?: ((nonce: Uint8Array) => Uint8Array | Promise<Uint8Array>) | null;
  /**
   * TLS settings for tls:// and wss:// addresses (docs/SECURITY.md): `ca` (PEM) that signed
   * the broker's certificate, `cert` and `key` (PEM) for a broker that verifies clients,
   * `rejectUnauthorized` (default true), `servername`. A tcp:// address with `tls` set is
   * refused rather than dialed in plain text.
   */
  tls?: ClientTlsOptions | null;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /**
   * When no server answers the first connect, keep trying (with the reconnect delays and
   * maxReconnectAttempts) instead of rejecting at once: for a service that may start
   * before its broker (default false; nats.js's option of the same name).
   */
  waitOnFirstConnect?: boolean;
  /** Reconnect attempts before giving up; -1 = forever (default). */
  maxReconnectAttempts?: number;
  /** First reconnect delay; doubles per failed round over the server list (default 100 ms). */
  reconnectDelayMs?: number;
  /** Cap of the reconnect delay (default 5,000 ms). */
  maxReconnectDelayMs?: number;
  /** Random extra delay up to this, so many clients do not reconnect in lockstep (default 100 ms). */
  reconnectJitterMs?: number;
  /** Bytes of publishes kept while disconnected, sent on reconnect; beyond it publish throws (default 8 MiB). */
  reconnectBufferBytes?: number;
  /** Bytes queued towards the broker before publish throws PendingLimitError (default 64 MiB). */
  maxPendingBytes?: number;
  /** Time allowed for connecting and the handshake, per attempt (default 5,000 ms). */
  timeoutMs?: number;
  /** Keepalive PING interval; 0 = off (default 30,000 ms). */
  pingIntervalMs?: number;
  /** Unanswered PINGs after which the connection is considered dead (default 2). */
  maxPingsOut?: number;
  /** Ask the broker to acknowledge every SUB, UNSUB and PUB with OK (default false). */
  verbose?: boolean;
  /**
   * Stamp published messages with their monotonic send time (default false). With the
   * latency service on, a publisher above 50k msg/s stamps one message in N (N up to
   * 128, carried in the frame so the histograms count it N times); set `latency: false`
   * to stamp every message.
   */
  timestamps?: boolean;
  /**
   * The latency service: histogram the hops of timestamped messages received
   * (bus.stats()) and report them to the broker when it asks (default true).
   */
  latency?: boolean;
  /** Default timeout of request() (default 5,000 ms). */
  requestTimeoutMs?: number;
  /**
   * Ask the broker to limit this connection's publishing (it can only lower the
   * broker's own limit): messages/s, bytes/s, bursts, and `action` 'slow' (the
   * broker stops reading, so publishing backs up here) or 'refuse' (dropped, counted,
   * reported as a RATE_LIMITED error).
   */
  publishRate?: { msgsPerSec?: number; bytesPerSec?: number; burstMsgs?: number; burstBytes?: number; action?: 'slow' | 'refuse' } | null;
  /**
   * shm connections: how this thread waits for messages, 'spin', 'hybrid' (default) or
   * 'park', or a WaitStrategy object (docs/SHM.md). Other transports ignore it.
   */
  wait?: WaitKind | WaitStrategy;
  /**
   * shm connections: deliver to other shm clients of the same broker directly, through
   * channel rings between the two threads, without the broker thread (default true;
   * docs/SHM.md, "Direct delivery"). Other transports ignore it.
   */
  direct?: boolean;
}

export type ResolvedConnectOptions = Required<ConnectOptions>;

export const CLIENT_DEFAULTS: ResolvedConnectOptions = {
  name: '',
  user: '',
  pass: '',
  token: '',
  seed: '',
  nkey: '',
  sign: null,
  tls: null,
  reconnect: true,
  waitOnFirstConnect: false,
  maxReconnectAttempts: -1,
  reconnectDelayMs: 100,
  maxReconnectDelayMs: 5_000,
  reconnectJitterMs: 100,
  reconnectBufferBytes: 8 * 1024 * 1024,
  maxPendingBytes: 64 * 1024 * 1024,
  timeoutMs: 5_000,
  pingIntervalMs: 30_000,
  maxPingsOut: 2,
  verbose: false,
  timestamps: false,
  latency: true,
  requestTimeoutMs: 5_000,
  publishRate: null,
  wait: 'hybrid',
  direct: true,
};

export function resolveConnectOptions(opts: ConnectOptions = {}): ResolvedConnectOptions {
  if (opts === null || typeof opts !== 'object') throw new OptionsError('connect options must be an object');
  const out: Record<string, unknown> = { ...CLIENT_DEFAULTS };
  for (const [k, v] of Object.entries(opts)) {
    const def = (CLIENT_DEFAULTS as unknown as Record<string, unknown>)[k];
    if (k === 'publishRate') {
      if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v)))
        throw new OptionsError('connect option "publishRate" must be an object');
      out[k] = v ?? null;
      continue;
    }
    if (k === 'tls') {
      if (v !== undefined && v !== null) {
        if (typeof v !== 'object' || Array.isArray(v))
          throw new OptionsError('connect option "tls" must be an object { ca, cert, key, rejectUnauthorized, servername }');
        for (const key of Object.keys(v as object))
          if (!(CLIENT_TLS_KEYS as readonly string[]).includes(key))
            throw new OptionsError(`connect option "tls" has an unknown key "${key}"; known: ${CLIENT_TLS_KEYS.join(', ')}`);
        const t = v as ClientTlsOptions;
        if ((t.cert === undefined) !== (t.key === undefined)) throw new OptionsError('connect option "tls" needs both "cert" and "key", or neither');
      }
      out[k] = v ?? null;
      continue;
    }
    if (k === 'sign') {
      if (v !== undefined && v !== null && typeof v !== 'function')
        throw new OptionsError('connect option "sign" must be a function (nonce: Uint8Array) => Uint8Array | Promise<Uint8Array>');
      out[k] = v ?? null;
      continue;
    }
    if (k === 'wait') {
      if (v !== undefined && v !== 'spin' && v !== 'hybrid' && v !== 'park' && !isWaitStrategy(v)) {
        throw new OptionsError(`connect option "wait" must be 'spin', 'hybrid', 'park' or a WaitStrategy object, got ${JSON.stringify(v)}`);
      }
      out[k] = v ?? 'hybrid';
      continue;
    }
    if (def === undefined) throw new OptionsError(`unknown connect option "${k}"; known options: ${Object.keys(CLIENT_DEFAULTS).join(', ')}`);
    if (v === undefined) continue;
    if (typeof v !== typeof def) throw new OptionsError(`connect option "${k}" must be a ${typeof def}, got ${JSON.stringify(v)}`);
    if (typeof v === 'number' && !(Number.isFinite(v) && (v >= 0 || (k === 'maxReconnectAttempts' && v === -1)))) {
      throw new OptionsError(`connect option "${k}" must be a non-negative number, got ${v}`);
    }
    out[k] = v;
  }
  const r = out as ResolvedConnectOptions;
  nkeyOptions(r);
  return r;
}

/**
 * The nkey options, checked together: `seed` alone, or `nkey` with `sign`, and not beside
 * a user or a token. A seed becomes the public key and a `sign` of its own. A seed is
 * never echoed in an error.
 */
function nkeyOptions(r: ResolvedConnectOptions): void {
  if (r.seed === '' && r.nkey === '' && r.sign === null) return;
  if (r.seed !== '' && (r.nkey !== '' || r.sign !== null))
    throw new OptionsError('connect options "seed" and "nkey"/"sign" are two ways to give the same key: give "seed", or "nkey" with "sign"');
  if (r.user !== '' || r.token !== '')
    throw new OptionsError(`connect option "${r.seed !== '' ? 'seed' : 'nkey'}" cannot go with "${r.user !== '' ? 'user' : 'token'}": authenticate one way`);
  if (r.seed === '') {
    if (r.nkey === '') throw new OptionsError('connect option "sign" needs "nkey", the public user nkey (U...) it signs for');
    if (r.sign === null)
      throw new OptionsError('connect option "nkey" needs "sign", a function that signs the broker\'s nonce (or give "seed" instead of both)');
    if (userNkeyBytes(r.nkey) === null) {
      if (userSeedBytes(r.nkey) !== null) throw new OptionsError('connect option "nkey" holds a seed (SU...): pass it as "seed", and keep it secret');
      throw new OptionsError(`connect option "nkey" must be a public user nkey (56 characters starting with U), got ${JSON.stringify(r.nkey.slice(0, 60))}`);
    }
    return;
  }
  if (userSeedBytes(r.seed) === null) {
    throw new OptionsError(
      userNkeyBytes(r.seed) !== null
        ? 'connect option "seed" holds a public nkey (U...): give the seed (SU...), or "nkey" with "sign"'
        : 'connect option "seed" must be a user nkey seed (58 characters starting with SU, as in a NATS seed or creds file)',
    );
  }
  let seed: UserSeed;
  try {
    seed = parseUserSeed(r.seed)!;
  } catch (err) {
    throw new OptionsError(
      `connect option "seed" needs node:crypto's Ed25519, which is not available here (${(err as Error).message}): give "nkey" and "sign" instead`,
    );
  }
  r.nkey = seed.publicKey;
  r.sign = (nonce) => signBytes(seed, nonce);
}
