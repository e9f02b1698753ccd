/**
 * Broker settings: every default a user may tune, in one place, each with why.
 * The daemon's --config file (JSON) and startBroker() take the same keys; an unknown
 * key or a value of the wrong kind is refused with an error that names it.
 */

import { POLICY_NAMES, type PolicyName } from '../transports/protocol/index.js';
import { isValidPattern } from '../topics/index.js';
import { HopbusError } from '../runtime/errors.js';
import { rateLimitProblem, type RateLimit } from './ratelimit.js';
import { bridgeOptionsProblem, type MulticastBridgeOptions } from './bridge.js';
import { JOURNAL_OPTION_KEYS, type JournalOptions } from './recorder.js';
import { cacheOptionsProblem, type CacheOptions } from './cache/cache.js';
import { Authenticator, authOptionProblem, type AnonymousConfig, type TokenConfig, type UserConfig } from './auth/index.js';
import { leafnodesOptionsProblem, type LeafnodesOptions } from './leaf/config.js';
import { resolveLeafnodes, type ResolvedLeafnodes } from './leaf/secrets.js';
import { MONITOR_PERMISSIONS, MonitorGuard, monitoringOptionProblem, type MonitoringConfig } from './auth/monitoring.js';
import { TlsSettings, tlsOptionProblem, type TlsConfig } from './tls.js';

export interface BrokerOptions {
  /** Interface to listen on for TCP. */
  host?: string;
  /** TCP port; 0 picks a free one. Set to null to serve no TCP at all (unix only). */
  port?: number | null;
  /** Also listen on this Unix-domain socket path. */
  unix?: string;
  /** Server name reported to clients and in logs. */
  name?: string;
  /** Largest payload a client may publish, in bytes. Sent to clients in INFO. */
  maxPayload?: number;
  /** Largest headers block of a message, in bytes. */
  maxHeaders?: number;
  /** Subscriptions one connection may hold. */
  maxSubscriptions?: number;
  /** Bytes queued or held for one connection (with 16 bytes per held message) before its slow-consumer policy acts. */
  maxPending?: number;
  /** Connections the broker accepts at once. */
  maxConnections?: number;
  /** Interval of the broker's keepalive PINGs; 0 turns keepalive off. */
  pingIntervalMs?: number;
  /** Unanswered PINGs after which a connection is stale and closed. */
  maxPingsOut?: number;
  /** Time a new connection has to send CONNECT. */
  handshakeTimeoutMs?: number;
  /** Entries in the subject match cache. */
  matchCacheSize?: number;
  /** Policy for subscriptions that do not choose one: disconnect, drop-oldest, drop-newest, conflate or block. */
  slowConsumerPolicy?: PolicyName;
  /** Bytes queued in a connection's link before messages are held for its policy to act on (default 1 MiB, at most half of maxPending). */
  highWaterBytes?: number;
  /** Messages held for one connection at most (0 = bounded by maxPending bytes only). */
  maxPendingMsgs?: number;
  /** A write to a connection blocked this long makes it a slow consumer (0 = off). */
  writeDeadlineMs?: number;
  /** A frame begun by a connection and not completed within this time closes it, releasing its bytes (0 = off). */
  readDeadlineMs?: number;
  /** Rate limit per publishing connection. */
  publishRate?: RateLimit;
  /** Rate limit per subscribing connection: messages beyond it are held, and its policy applies. */
  deliverRate?: RateLimit;
  /** Rate limits per subject pattern, shared by every publisher of a matching subject. */
  subjectRates?: Array<RateLimit & { pattern: string }>;
  /** Serve HTTP monitoring, the dashboard and WebSocket clients (ws://host:P/bus) on this port, on `host`; null = off. 0 picks a free port. */
  httpPort?: number | null;
  /** Web pages (origins, e.g. "https://desk.example") besides the broker's own that may use its HTTP port and WebSocket; "*" for any (broker/web.ts). */
  allowedOrigins?: string[];
  /** Host names besides `host`, localhost and the loopback addresses that the HTTP port answers to; "*" for any (broker/web.ts). */
  allowedHosts?: string[];
  /** The latency service: histogram timestamped messages, take client reports, publish $SYS.latency (default true). */
  latency?: boolean;
  /** Interval of rates, microburst peaks, latency reports and $SYS.* publications, in ms. */
  monitorIntervalMs?: number;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  logLevel?: string;
  /** Where pino writes: a file descriptor (1 = stdout, the default). */
  logDestination?: number;
  /** Bridge to UDP multicast channels (docs/MULTICAST.md): { url, channels, rules, export, import, ... }. */
  multicast?: MulticastBridgeOptions | null;
  /** Also speak the NATS client protocol on this TCP port (docs/NATS.md); null = off (the default), 0 picks a free port. */
  natsPort?: number | null;
  /** Interface of the NATS listener (default: `host`). */
  natsHost?: string;
  /** Record the messages published on some subjects into a journal (docs/JOURNAL.md): { dir, subjects, segmentBytes, maxBytes, maxAgeMs, fsync }; null = off. */
  journal?: JournalOptions | null;
  /**
   * The last-value cache (docs/CACHE.md): per pattern, the newest message of each matching
   * subject, `[{ pattern, maxSubjects, maxBytes, ttlMs? }]`; a subject is kept by the first
   * pattern it matches. Empty = off.
   */
  cache?: CacheOptions[];
  /**
   * Users who may connect (docs/SECURITY.md): `{ user, password }` (the password plain,
   * or an scrypt hash from `hopbus passwd`) or `{ nkey }` (an Ed25519 user nkey, NATS
   * listener), each with optional `permissions` and `limits`.
   */
  users?: UserConfig[];
  /** Bearer tokens that may connect: strings, or `{ token, name, permissions, limits }`. */
  tokens?: Array<string | TokenConfig>;
  /** What a connection that presents no credentials may do: true, false, or `{ permissions, limits }` (docs/SECURITY.md). */
  anonymous?: AnonymousConfig;
  /** Be a leafnode of NATS clusters (docs/LEAFNODE.md): { remotes: [{ urls, user, pass, token, nkey, credentials, tls, export, import, policy, maxPending, name }], ... }; null = off. */
  leafnodes?: LeafnodesOptions | null;
  /** The other brokers clients may fail over to (docs/LEAFNODE.md#failover): { peers: ['tcp://host:7400', 'nats://host:4222', ...] }, told to clients in INFO. */
  cluster?: ClusterOptions | null;
  /**
   * TLS on the TCP listener (tls://), the NATS listener and the HTTP port (docs/SECURITY.md):
   * `{ cert, key, ca, verify, required, minVersion, http }`, files as paths or PEM text; null = off.
   */
  tls?: TlsConfig | null;
  /** Credentials the monitoring endpoints ask for: `{ token, users }` (docs/SECURITY.md); null = open. */
  monitoring?: MonitoringConfig | null;
}

/** Failover peers, told to clients (hopbus INFO `connectUrls`; NATS INFO `connect_urls` for the nats:// ones). */
export interface ClusterOptions {
  peers: string[];
}

export type ResolvedOptions = Required<
  Omit<
    BrokerOptions,
    | 'unix'
    | 'port'
    | 'httpPort'
    | 'publishRate'
    | 'deliverRate'
    | 'multicast'
    | 'natsPort'
    | 'natsHost'
    | 'journal'
    | 'users'
    | 'tokens'
    | 'anonymous'
    | 'leafnodes'
    | 'cluster'
    | 'tls'
    | 'monitoring'
  >
> & {
  /** `leafnodes`, with the files its remotes' `tls` and `credentials` name read (broker/leaf/secrets.ts). */
  leafnodes?: ResolvedLeafnodes | null;
  cluster?: ClusterOptions | null;
  /** `tls`, with its files read (broker/tls.ts); null when off. */
  tls: TlsSettings | null;
  /** `monitoring`, compiled: what the monitoring endpoints ask for; null when they are open. */
  monitoring: MonitorGuard | null;
  /** `users`, `tokens` and `anonymous`, compiled (broker/auth/); logs and /varz show it without secrets. */
  auth: Authenticator;
  multicast?: MulticastBridgeOptions | null;
  journal?: JournalOptions | null;
  unix?: string;
  port: number | null;
  httpPort: number | null;
  natsPort: number | null;
  natsHost?: string;
  publishRate?: RateLimit;
  deliverRate?: RateLimit;
};

export const DEFAULTS: Omit<ResolvedOptions, 'auth' | 'tls' | 'monitoring'> = {
  host: '127.0.0.1',
  port: 7400,
  name: 'hopbus',
  // 1 MiB: large enough for any market-data or order message; bigger payloads
  // belong in a store, with their key on the bus. nats-server has the same default.
  maxPayload: 1024 * 1024,
  maxHeaders: 64 * 1024,
  maxSubscriptions: 65_536,
  // 64 MiB, as nats-server: 2.5 to 6 s of a 40k-80k msg/s feed of 256-byte messages for
  // a subscriber that stalls (a full GC, a CPU quota); beyond that it is not catching up
  // soon and its data would be stale. Held off the V8 heap (broker/holdring.ts), it costs
  // memory only, and that memory is bounded (broker/policy.ts outboundMemoryBound);
  // docs/FLOW.md says more.
  maxPending: 64 * 1024 * 1024,
  maxConnections: 65_536,
  // 30 s PINGs and 2 misses: a dead peer behind a silent network is found within
  // about 90 s, at the cost of one tiny frame per connection per interval.
  pingIntervalMs: 30_000,
  maxPingsOut: 2,
  handshakeTimeoutMs: 5_000,
  matchCacheSize: 4096,
  slowConsumerPolicy: 'disconnect',
  // 1 MiB in the socket's queue before messages go to the hold ring: big enough that
  // a healthy consumer's bursts never reach it, small enough that a policy acts on
  // nearly everything a stuck consumer has not read.
  highWaterBytes: 1024 * 1024,
  maxPendingMsgs: 0,
  // 10 s, as nats-server: a consumer whose socket accepts nothing for this long is not
  // coming back soon; it cuts a stuck consumer of a slow stream, where maxPending would
  // take minutes to fill.
  writeDeadlineMs: 10_000,
  // 10 s, the write deadline's twin: a peer that starts a frame and stops sending holds
  // up to a max-size frame of broker memory until then.
  readDeadlineMs: 10_000,
  subjectRates: [],
  cache: [],
  httpPort: null,
  allowedOrigins: [],
  allowedHosts: [],
  // Off when embedded: a library should not open a second port unasked. The daemon
  // (bin/hopbus.ts) turns it on at NATS's usual 4222.
  natsPort: null,
  // On: it costs nothing for messages without timestamps but a counter per message.
  latency: true,
  // 1 s: the granularity a person watching a dashboard or an engine adapting to
  // latency can use; microburst peaks are kept per interval, so they are not averaged away.
  monitorIntervalMs: 1000,
  logLevel: 'warn',
  logDestination: 1,
};

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Broker options that cannot be used; the message names the option and what it accepts. */
export class ConfigError extends HopbusError {
  declare readonly code: 'BAD_CONFIG';
  constructor(message: string) {
    super('BAD_CONFIG', message);
  }
}

type Kind =
  | 'string'
  | 'strings'
  | 'int'
  | 'port'
  | 'policy'
  | 'rate'
  | 'rates'
  | 'multicast'
  | 'bool'
  | 'journal'
  | 'auth'
  | 'cache'
  | 'leafnodes'
  | 'cluster'
  | 'tls'
  | 'monitoring';
const KINDS: Record<keyof BrokerOptions, Kind> = {
  host: 'string',
  port: 'port',
  unix: 'string',
  name: 'string',
  maxPayload: 'int',
  maxHeaders: 'int',
  maxSubscriptions: 'int',
  maxPending: 'int',
  maxConnections: 'int',
  pingIntervalMs: 'int',
  maxPingsOut: 'int',
  handshakeTimeoutMs: 'int',
  matchCacheSize: 'int',
  slowConsumerPolicy: 'policy',
  highWaterBytes: 'int',
  maxPendingMsgs: 'int',
  writeDeadlineMs: 'int',
  readDeadlineMs: 'int',
  publishRate: 'rate',
  deliverRate: 'rate',
  subjectRates: 'rates',
  httpPort: 'port',
  allowedOrigins: 'strings',
  allowedHosts: 'strings',
  latency: 'bool',
  monitorIntervalMs: 'int',
  logLevel: 'string',
  logDestination: 'int',
  multicast: 'multicast',
  natsPort: 'port',
  natsHost: 'string',
  journal: 'journal',
  cache: 'cache',
  users: 'auth',
  tokens: 'auth',
  anonymous: 'auth',
  leafnodes: 'leafnodes',
  cluster: 'cluster',
  tls: 'tls',
  monitoring: 'monitoring',
};

/** What is wrong with a `cluster` option, or null. */
function clusterOptionsProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"cluster" must be an object { peers: [...] }';
  const c = value as Record<string, unknown>;
  for (const k of Object.keys(c)) if (k !== 'peers') return `"cluster" has an unknown key "${k}"; known keys: peers`;
  if (!Array.isArray(c.peers)) return '"cluster.peers" must be an array of broker URLs (tcp://host:7400, nats://host:4222, ...)';
  for (const p of c.peers as unknown[]) if (typeof p !== 'string' || !URL.canParse(p)) return `"cluster.peers" must hold URLs, got ${JSON.stringify(p)}`;
  return null;
}

const AUTH_KEYS = new Set(['users', 'tokens', 'anonymous']);

const FSYNC_POLICIES = ['none', 'interval', 'always'];

/** What is wrong with a `journal` option, or null. */
function journalOptionsProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"journal" must be an object { dir, subjects, ... }';
  const j = value as Record<string, unknown>;
  for (const key of Object.keys(j)) {
    if (!(JOURNAL_OPTION_KEYS as readonly string[]).includes(key))
      return `"journal" has an unknown key "${key}"; known keys: ${JOURNAL_OPTION_KEYS.join(', ')}`;
  }
  if (typeof j.dir !== 'string' || j.dir.length === 0) return `"journal.dir" must be a non-empty string (a directory), got ${JSON.stringify(j.dir)}`;
  if (!Array.isArray(j.subjects) || j.subjects.length === 0) return '"journal.subjects" must be a non-empty array of subject patterns (e.g. ["md.>"])';
  for (const p of j.subjects as unknown[]) {
    if (typeof p !== 'string' || !isValidPattern(p)) return `"journal.subjects" must hold valid subject patterns, got ${JSON.stringify(p)}`;
  }
  for (const key of ['segmentBytes', 'maxBytes', 'maxAgeMs'] as const) {
    const v = j[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) >= 1)) return `"journal.${key}" must be a positive integer, got ${JSON.stringify(v)}`;
  }
  if (j.fsync !== undefined && !FSYNC_POLICIES.includes(j.fsync as string))
    return `"journal.fsync" must be one of ${FSYNC_POLICIES.join(', ')}, got ${JSON.stringify(j.fsync)}`;
  return null;
}

/** Validates options against the known keys and fills in defaults. */
export function resolveOptions(opts: BrokerOptions = {}): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new ConfigError('broker options must be an object');
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const [key, value] of Object.entries(opts)) {
    const kind = KINDS[key as keyof BrokerOptions];
    if (kind === undefined) {
      throw new ConfigError(`unknown broker option "${key}"; known options: ${Object.keys(KINDS).join(', ')}`);
    }
    if (value === undefined) continue;
    if (kind === 'string' && (typeof value !== 'string' || value.length === 0)) {
      throw new ConfigError(`broker option "${key}" must be a non-empty string, got ${JSON.stringify(value)}`);
    }
    if (kind === 'int' && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
      throw new ConfigError(`broker option "${key}" must be a non-negative integer, got ${JSON.stringify(value)}`);
    }
    if (kind === 'strings' && !(Array.isArray(value) && value.every((x) => typeof x === 'string' && x.length > 0))) {
      throw new ConfigError(`broker option "${key}" must be an array of non-empty strings, got ${JSON.stringify(value)}`);
    }
    if (kind === 'bool' && typeof value !== 'boolean') throw new ConfigError(`broker option "${key}" must be true or false, got ${JSON.stringify(value)}`);
    if (kind === 'policy' && !(POLICY_NAMES as readonly string[]).includes(value as string)) {
      throw new ConfigError(`broker option "${key}" must be one of ${POLICY_NAMES.slice(1).join(', ')}, got ${JSON.stringify(value)}`);
    }
    if (kind === 'policy' && value === 'default') throw new ConfigError(`broker option "${key}" must name a policy, not "default"`);
    if (kind === 'rate') {
      const bad = rateLimitProblem(value, key);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'rates') {
      if (!Array.isArray(value)) throw new ConfigError(`broker option "${key}" must be an array of { pattern, msgsPerSec, bytesPerSec, ... }`);
      value.forEach((r: unknown, i: number) => {
        if (r === null || typeof r !== 'object') throw new ConfigError(`${key}[${i}] must be an object`);
        const { pattern, ...limit } = r as { pattern?: unknown };
        if (typeof pattern !== 'string' || !isValidPattern(pattern))
          throw new ConfigError(`${key}[${i}].pattern must be a valid subject pattern, got ${JSON.stringify(pattern)}`);
        const bad = rateLimitProblem(limit, `${key}[${i}]`);
        if (bad) throw new ConfigError(`broker option ${bad}`);
      });
    }
    if (kind === 'multicast' && value !== null) {
      const bad = bridgeOptionsProblem(value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'journal' && value !== null) {
      const bad = journalOptionsProblem(value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'cache') {
      const bad = cacheOptionsProblem(value, isValidPattern);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'leafnodes' && value !== null) {
      const bad = leafnodesOptionsProblem(value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
      try {
        out[key] = resolveLeafnodes(value as LeafnodesOptions);
      } catch (err) {
        throw new ConfigError(`broker option ${(err as Error).message}`);
      }
      continue;
    }
    if (kind === 'cluster' && value !== null) {
      const bad = clusterOptionsProblem(value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'auth') {
      const bad = authOptionProblem(key as 'users' | 'tokens' | 'anonymous', value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'tls' && value !== null) {
      const bad = tlsOptionProblem(value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'monitoring' && value !== null) {
      const bad = monitoringOptionProblem(value);
      if (bad) throw new ConfigError(`broker option ${bad}`);
    }
    if (kind === 'port' && value !== null && !(Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535)) {
      throw new ConfigError(
        `broker option "${key}" must be an integer from 0 to 65535 (or null for ${key === 'port' ? 'no TCP' : key === 'natsPort' ? 'no NATS listener' : 'no HTTP'}), got ${JSON.stringify(value)}`,
      );
    }
    out[key] = value;
  }
  for (const k of AUTH_KEYS) delete out[k];
  const o = opts as BrokerOptions;
  const mon = o.monitoring ?? null;
  // The monitoring token also lets the dashboard's WebSocket client read $SYS.> where connections need credentials.
  const monToken: TokenConfig[] =
    mon?.token !== undefined && ((o.users?.length ?? 0) > 0 || (o.tokens?.length ?? 0) > 0)
      ? [{ token: mon.token, name: 'monitoring', permissions: MONITOR_PERMISSIONS }]
      : [];
  out.auth = new Authenticator({
    users: o.users,
    tokens: o.tokens === undefined && monToken.length === 0 ? undefined : [...(o.tokens ?? []), ...monToken],
    anonymous: o.anonymous,
  });
  for (const name of mon?.users ?? []) {
    if (!(o.users ?? []).some((u) => u.user === name && u.password !== undefined))
      throw new ConfigError(`broker option "monitoring.users" names "${name}", which is not a user with a password in "users"`);
  }
  out.monitoring = mon === null ? null : new MonitorGuard(mon, out.auth as Authenticator);
  try {
    out.tls = o.tls ? new TlsSettings(o.tls) : null;
  } catch (err) {
    throw new ConfigError(`broker option ${(err as Error).message}`);
  }
  const r = out as ResolvedOptions;
  if (!LEVELS.has(r.logLevel)) throw new ConfigError(`broker option "logLevel" must be one of ${[...LEVELS].join(', ')}, got "${r.logLevel}"`);
  if (r.maxPayload < 1) throw new ConfigError('broker option "maxPayload" must be at least 1 byte');
  if (r.maxPayload > 64 * 1024 * 1024) throw new ConfigError('broker option "maxPayload" is capped at 64 MiB');
  if (r.maxHeaders > 1024 * 1024) throw new ConfigError('broker option "maxHeaders" is capped at 1 MiB');
  if (r.port === null && !r.unix) throw new ConfigError('the broker needs a TCP port or a unix socket path to listen on');
  // Unset, the high-water mark follows a small maxPending down.
  if (opts.highWaterBytes === undefined) r.highWaterBytes = Math.min(r.highWaterBytes, Math.floor(r.maxPending / 2));
  if (r.highWaterBytes > r.maxPending)
    throw new ConfigError(`broker option "highWaterBytes" (${r.highWaterBytes}) must not exceed "maxPending" (${r.maxPending})`);
  if (r.monitorIntervalMs < 10) throw new ConfigError('broker option "monitorIntervalMs" must be at least 10 ms');
  if (r.maxPingsOut < 1) throw new ConfigError('broker option "maxPingsOut" must be at least 1');
  return r;
}
