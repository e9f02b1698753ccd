/**
 * broker/leaf/config.ts: the `leafnodes` broker option, validated (an unknown key or a
 * value of the wrong kind is refused with a message that names it) and resolved.
 *
 *   leafnodes: {
 *     remotes: [{ urls: ['nats://hub-a:7422', 'tls://hub-b:7422'], user, pass, token,
 *                 nkey, credentials, tls: { ca, cert, key, servername, handshakeFirst },
 *                 export: ['md.>'], import: ['orders.>'], policy, maxPending, name }],
 *     reconnectDelayMs, maxReconnectDelayMs, loopDelayMs,
 *   }
 *
 * The shape is checked here, with no I/O; the files `tls` and `credentials` name are read
 * by secrets.ts (resolveLeafnodes). Must not import the broker or sessions.
 */
import { isValidPattern } from '../../topics/index.js';
import { parseUserSeed } from './nkey.js';

export const LEAF_POLICIES = ['drop-oldest', 'drop-newest', 'disconnect'] as const;
export type LeafPolicyName = (typeof LEAF_POLICIES)[number];

export interface LeafRemoteOptions {
  /** The hub's leafnode URLs (`nats://[user:pass@]host:port`, or `tls://host:port`: TLS as with `tls: {}`), tried in turn; the hub's INFO adds its cluster's. */
  urls: string[];
  user?: string;
  pass?: string;
  token?: string;
  /** A user nkey seed (SU...) to sign the hub's nonce with: CONNECT carries its public nkey and the signature. */
  nkey?: string;
  /** A NATS .creds file (a user JWT and its nkey seed): CONNECT carries the JWT and the seed's signature of the hub's nonce. */
  credentials?: string;
  /** TLS to the hub (after its plain-text INFO, as nats-server's leafnodes), its certificate verified. */
  tls?: LeafTlsOptions;
  /** The local account the uplink serves: hopbus has one, `$G` (the default), as nats-server calls its global account. */
  account?: string;
  /** What local publishes may go out to the hub (the hub's interest is taken in only inside these); default: everything but `$` subjects. */
  export?: string[];
  /** What may come in from the hub (local subscriptions are announced only inside these); default: everything but `$` subjects. */
  import?: string[];
  /** What the uplink does when the hub is behind past `maxPending`: drop-oldest (default), drop-newest, or disconnect (and reconnect). */
  policy?: LeafPolicyName;
  /** Bytes queued towards the hub before the policy acts (default 8 MiB). */
  maxPending?: number;
  /** Shown in logs and monitoring (default `leaf<i>`). */
  name?: string;
}

/** A remote's TLS: `ca`, `cert`, `key` are file paths or PEM text, as the broker's `tls` option. */
export interface LeafTlsOptions {
  /** The CA(s) the hub's certificate must be signed by (default: the system's). */
  ca?: string;
  /** This broker's client certificate, for a hub that verifies leafs (`verify: true`). */
  cert?: string;
  /** The private key of `cert`. */
  key?: string;
  /** The name the hub's certificate must carry, and sent for SNI (default: the URL's host). */
  servername?: string;
  /** TLS from the first byte, before the hub's INFO, for a hub whose leafnode TLS has `handshake_first` (nats-server 2.10 and later). */
  handshakeFirst?: boolean;
}

export interface LeafnodesOptions {
  remotes: LeafRemoteOptions[];
  /** Delay after a failed attempt, doubling per failure up to maxReconnectDelayMs (default 100). */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** How long a remote that found a loop waits before trying again, unless another uplink is lost first (default 30000, nats-server's). */
  loopDelayMs?: number;
}

const TOP_KEYS = ['remotes', 'reconnectDelayMs', 'maxReconnectDelayMs', 'loopDelayMs'];
const REMOTE_KEYS = ['urls', 'user', 'pass', 'token', 'nkey', 'credentials', 'tls', 'account', 'export', 'import', 'policy', 'maxPending', 'name'];
const TLS_KEYS = ['ca', 'cert', 'key', 'servername', 'handshakeFirst'];
const SCHEMES = ['nats:', 'tcp:', 'tls:'];

/** What is wrong with a `leafnodes` option, or null. */
export function leafnodesOptionsProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"leafnodes" must be an object { remotes: [...] }';
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!TOP_KEYS.includes(k)) return `"leafnodes" has an unknown key "${k}"; known keys: ${TOP_KEYS.join(', ')}`;
  for (const k of ['reconnectDelayMs', 'maxReconnectDelayMs', 'loopDelayMs']) {
    const n = v[k];
    if (n !== undefined && !(Number.isSafeInteger(n) && (n as number) >= 0)) return `"leafnodes.${k}" must be a non-negative integer, got ${JSON.stringify(n)}`;
  }
  if (!Array.isArray(v.remotes) || v.remotes.length === 0) return '"leafnodes.remotes" must be a non-empty array of { urls, ... }';
  for (let i = 0; i < v.remotes.length; i++) {
    const bad = remoteProblem(v.remotes[i], `leafnodes.remotes[${i}]`);
    if (bad !== null) return bad;
  }
  return null;
}

function remoteProblem(value: unknown, at: string): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `"${at}" must be an object { urls, ... }`;
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!REMOTE_KEYS.includes(k)) return `"${at}" has an unknown key "${k}"; known keys: ${REMOTE_KEYS.join(', ')}`;
  if (!Array.isArray(r.urls) || r.urls.length === 0) return `"${at}.urls" must be a non-empty array of nats://host:port URLs`;
  for (const u of r.urls as unknown[]) {
    const bad = urlProblem(u);
    if (bad !== null) return `"${at}.urls": ${bad}`;
  }
  for (const k of ['user', 'pass', 'token', 'name']) {
    if (r[k] !== undefined && (typeof r[k] !== 'string' || (r[k] as string).length === 0)) return `"${at}.${k}" must be a non-empty string`;
  }
  if (r.tls !== undefined) {
    const bad = tlsProblem(r.tls, `${at}.tls`);
    if (bad !== null) return bad;
  }
  if (r.nkey !== undefined && parseUserSeed(r.nkey as string) === null) return `"${at}.nkey" must be a user nkey seed (SU...; keep it out of version control)`;
  if (r.credentials !== undefined && (typeof r.credentials !== 'string' || r.credentials === ''))
    return `"${at}.credentials" must be the path of a NATS .creds file, got ${JSON.stringify(r.credentials)}`;
  if (r.credentials !== undefined && r.nkey !== undefined)
    return `"${at}": "credentials" and "nkey" exclude each other (a .creds file holds its own nkey seed)`;
  if (r.account !== undefined && r.account !== '$G')
    return `"${at}.account": hopbus has one account, "$G" (the hub binds the leaf to the account of the credentials it presents), got ${JSON.stringify(r.account)}`;
  if ((r.user === undefined) !== (r.pass === undefined)) return `"${at}": "user" and "pass" go together`;
  for (const k of ['export', 'import']) {
    const ps = r[k];
    if (ps === undefined) continue;
    if (!Array.isArray(ps)) return `"${at}.${k}" must be an array of subject patterns`;
    for (const p of ps as unknown[])
      if (typeof p !== 'string' || !isValidPattern(p)) return `"${at}.${k}" must hold valid subject patterns, got ${JSON.stringify(p)}`;
  }
  if (r.policy !== undefined && !(LEAF_POLICIES as readonly string[]).includes(r.policy as string))
    return `"${at}.policy" must be one of ${LEAF_POLICIES.join(', ')}, got ${JSON.stringify(r.policy)}`;
  if (r.maxPending !== undefined && !(Number.isSafeInteger(r.maxPending) && (r.maxPending as number) >= 1024))
    return `"${at}.maxPending" must be an integer of at least 1024 bytes, got ${JSON.stringify(r.maxPending)}`;
  return null;
}

function tlsProblem(value: unknown, at: string): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `"${at}" must be an object { ${TLS_KEYS.join(', ')} }`;
  const t = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(t)) {
    if (!TLS_KEYS.includes(k)) return `"${at}" has an unknown key "${k}"; known keys: ${TLS_KEYS.join(', ')}`;
    if (v === undefined) continue;
    if (k === 'handshakeFirst') {
      if (typeof v !== 'boolean') return `"${at}.handshakeFirst" must be true or false, got ${JSON.stringify(v)}`;
    } else if (typeof v !== 'string' || v === '')
      return `"${at}.${k}" must be ${k === 'servername' ? 'a host name' : 'a file path or PEM text'}, got ${JSON.stringify(v)}`;
  }
  if ((t.cert === undefined) !== (t.key === undefined)) return `"${at}": "cert" and "key" go together (the client certificate and its private key)`;
  return null;
}

/** What is wrong with a hub URL, or null. */
export function urlProblem(u: unknown): string | null {
  if (typeof u !== 'string') return `a URL must be a string, got ${JSON.stringify(u)}`;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return `${JSON.stringify(u)} is not a URL (nats://host:port)`;
  }
  if (url.protocol === 'wss:' || url.protocol === 'ws:')
    return `${JSON.stringify(u)}: ${url.protocol.slice(0, -1)}:// to a leafnode hub is not supported yet; use nats://host:port or tls://host:port`;
  if (!SCHEMES.includes(url.protocol)) return `${JSON.stringify(u)} must be nats://host:port or tls://host:port`;
  if (url.hostname === '' || url.port === '') return `${JSON.stringify(u)} needs a host and a port (nats://host:7422)`;
  return null;
}
