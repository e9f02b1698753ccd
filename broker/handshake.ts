/**
 * broker/handshake.ts: the CONNECT handshake of the hopbus codec, apart from the
 * session's steady state. A connection's first frame must be CONNECT; it is read and
 * validated in steps, each of which may refuse the connection with an ERR code:
 *
 *   1. the frame: op CONNECT, protocol version          (readConnect)
 *   2. the options: a msgpack map of known keys, typed  (readConnect)
 *   3. the client's publish rate, lowered to the broker's
 *   4. authentication: the Hello's credentials against the broker's users and tokens
 *      (broker/auth/admit.ts), refused with AUTH                            (authRefusal);
 *      a CONNECT with `nkey` where nkeys are configured is first sent a CHALLENGE (a
 *      fresh nonce), and its PROOF (the signature) is what is checked     (readProof)
 *   5. the user's limits, the publish rate lowered once more (broker/sessionkit.ts)
 *   6. direct delivery granted or not                   (directRefusal)
 *   7. INFO back                                        (encodeInfo)
 *
 * The session (broker/session.ts) runs the steps and applies the result; the handshake
 * timeout is broker/liveness.ts's, and covers the CHALLENGE and its answer too.
 *
 * Must not import sessions, the router or the broker: pure functions over bytes and options.
 */
import { Packr, Unpackr } from 'msgpackr';
import { ErrCode, Op, OP_NAMES, PROOF_SIZE, PROTOCOL_VERSION, encodeHandshake } from '../transports/protocol/index.js';
import { VERSION } from '../transports/protocol/version.js';
import type { ResolvedOptions } from './config.js';
import { rateLimitProblem, stricterLimit, type RateLimit } from './ratelimit.js';
import type { Credentials } from './auth/index.js';

/**
 * The largest frame a connection may send before its CONNECT is accepted (nats-server
 * limits its control line to 4 KiB too): an unauthenticated peer can make the broker
 * buffer this much, not a max-size frame.
 */
export const MAX_CONNECT_FRAME = 4096;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

/** CONNECT options a client may send, and their types. Anything else is refused. */
const CONNECT_KEYS: Record<string, 'string' | 'boolean' | 'object'> = {
  name: 'string',
  lang: 'string',
  version: 'string',
  verbose: 'boolean',
  timestamps: 'boolean',
  // A publish rate limit the client asks for; it can only lower the broker's.
  publishRate: 'object',
  // shm clients: deliver to other shm clients directly (broker/direct.ts).
  direct: 'boolean',
  // Credentials (broker/auth/): a user and password, a token, or an nkey (public key;
  // the broker answers with a CHALLENGE whose nonce the client signs in a PROOF).
  user: 'string',
  pass: 'string',
  token: 'string',
  nkey: 'string',
  // A reconnecting client: the connection it had before ({ serverId, clientId } of its INFO).
  resume: 'object',
};

/** What a valid CONNECT says about the client. */
export interface Hello {
  name: string;
  lang: string;
  verbose: boolean;
  /** The client asked for a publish rate limit: the broker's, lowered by that request. Undefined when it did not ask. */
  publishRate: RateLimit | undefined;
  /** The client asked for direct delivery. */
  direct: boolean;
  /** What it presented to authenticate with (step 4); absent: nothing. */
  creds?: Credentials;
  /** A reconnecting client's previous connection, or null. */
  resume: { serverId: string; clientId: number } | null;
}

/** Why a connection is refused: the ERR it gets before it is closed. */
export interface Refusal {
  code: number;
  text: string;
}

/** Steps 1-3: the CONNECT frame buf[off, off+len), read against the broker's config. */
export function readConnect(buf: Buffer, off: number, len: number, config: Pick<ResolvedOptions, 'publishRate'>): Hello | Refusal {
  const op = buf[off + 4]!;
  if (op !== Op.CONNECT) return { code: ErrCode.NOT_CONNECTED, text: `expected CONNECT as the first frame, got ${OP_NAMES[op]}` };
  const version = buf.readUInt16LE(off + 6);
  if (version !== PROTOCOL_VERSION) {
    return { code: ErrCode.VERSION, text: `protocol version ${version} is not supported; this broker speaks version ${PROTOCOL_VERSION}` };
  }
  let opts: unknown;
  try {
    opts = len > 8 ? unpackr.unpack(buf.subarray(off + 8, off + len)) : {};
  } catch (err) {
    return { code: ErrCode.PROTOCOL, text: `CONNECT options are not valid msgpack: ${(err as Error).message}` };
  }
  if (opts === null || typeof opts !== 'object' || Object.getPrototypeOf(opts) !== Object.prototype) {
    return { code: ErrCode.PROTOCOL, text: 'CONNECT options must be a msgpack map' };
  }
  for (const [k, v] of Object.entries(opts)) {
    const type = CONNECT_KEYS[k];
    if (type === undefined) return { code: ErrCode.PROTOCOL, text: `unknown CONNECT option "${k}"; known: ${Object.keys(CONNECT_KEYS).join(', ')}` };
    if (typeof v !== type) return { code: ErrCode.PROTOCOL, text: `CONNECT option "${k}" must be a ${type}` };
  }
  const o = opts as {
    name?: string;
    lang?: string;
    verbose?: boolean;
    publishRate?: RateLimit;
    direct?: boolean;
    resume?: Record<string, unknown>;
    user?: string;
    pass?: string;
    token?: string;
    nkey?: string;
  };
  if (o.publishRate !== undefined) {
    const bad = rateLimitProblem(o.publishRate, 'publishRate');
    if (bad !== null) return { code: ErrCode.BAD_OPTION, text: `CONNECT option ${bad}` };
  }
  const r = o.resume;
  if (r !== undefined && (r === null || typeof r.serverId !== 'string' || !Number.isInteger(r.clientId) || Object.keys(r).length !== 2)) {
    return { code: ErrCode.BAD_OPTION, text: 'CONNECT option "resume" must be { serverId: string, clientId: integer }' };
  }
  return {
    name: (o.name ?? '').slice(0, 256),
    lang: (o.lang ?? '').slice(0, 64),
    verbose: o.verbose === true,
    publishRate: o.publishRate !== undefined ? (config.publishRate ? stricterLimit(config.publishRate, o.publishRate) : o.publishRate) : undefined,
    direct: o.direct === true,
    resume: r === undefined ? null : { serverId: r.serverId as string, clientId: r.clientId as number },
    ...(o.user !== undefined || o.pass !== undefined || o.token !== undefined || o.nkey !== undefined
      ? { creds: { user: o.user, pass: o.pass, token: o.token, nkey: o.nkey } }
      : {}),
  };
}

/**
 * Step 4's answer to a CHALLENGE: the frame must be a PROOF (the reader has checked its
 * size); its signature, base64, as `sig` of the credentials. Anything else is refused.
 */
export function readProof(buf: Buffer, off: number): string | Refusal {
  const op = buf[off + 4]!;
  if (op !== Op.PROOF)
    return { code: ErrCode.PROTOCOL, text: `expected PROOF in answer to the nkey CHALLENGE, got ${OP_NAMES[op] ?? `op 0x${op.toString(16)}`}` };
  return buf.toString('base64', off + 8, off + PROOF_SIZE);
}

/** Step 4's refusal: an AUTH error that says why (never which secret was wrong). */
export function authRefusal(why: string): Refusal {
  return { code: ErrCode.AUTH, text: `authorization violation: ${why}` };
}

export function isRefusal(r: Hello | Refusal | string): r is Refusal {
  return typeof r === 'object' && (r as Refusal).code !== undefined;
}

/**
 * Step 6: why a client that asked for direct delivery does not get it, or null.
 * `planeRefusal` is the direct plane's own verdict (transport, broker config).
 */
export function directRefusal(hello: Hello, planeRefusal: () => string | null): string | null {
  if (hello.verbose) return 'verbose acknowledges every PUB';
  if (hello.publishRate !== undefined) return 'the client asked for a publish rate limit';
  return planeRefusal();
}

/**
 * Step 7: what INFO tells a client about this broker; `previous`, for a client that
 * resumed, is why its previous connection was closed (broker/liveness.ts SlowNotice);
 * `limits`, this connection's where its user's are lower than the broker's (broker/auth/).
 */
export function serverInfo(
  o: Omit<ResolvedOptions, 'auth' | 'tls' | 'monitoring'>,
  serverId: string,
  clientId: number,
  direct = false,
  previous?: object,
  limits?: { maxPayload?: number; maxSubscriptions?: number; maxPending?: number },
): Record<string, unknown> {
  return {
    serverId,
    serverName: o.name,
    version: VERSION,
    proto: PROTOCOL_VERSION,
    clientId,
    // A user's limits where they are lower than the broker's (broker/auth/).
    maxPayload: limits?.maxPayload ?? o.maxPayload,
    maxHeaders: o.maxHeaders,
    maxSubscriptions: limits?.maxSubscriptions ?? o.maxSubscriptions,
    maxPending: limits?.maxPending ?? o.maxPending,
    pingIntervalMs: o.pingIntervalMs,
    // How often clients report their latency histograms on $SYS.report.<clientId>; 0 = do not.
    reportIntervalMs: o.latency ? o.monitorIntervalMs : 0,
    // It serves snapshot SUBs (SUB_SNAPSHOT, IMAGE frames) and, with a journal, replay SUBs.
    snapshots: true,
    ...(o.journal ? { replay: true } : {}),
    ...(direct ? { direct: true } : {}),
    // The other brokers of this service (config cluster.peers) that hopbus clients can dial: their reconnect list grows by them.
    ...(o.cluster && o.cluster.peers.some(isHopbusUrl) ? { connectUrls: o.cluster.peers.filter(isHopbusUrl) } : {}),
    ...(previous !== undefined ? { previous } : {}),
  };
}

/** A peer URL a hopbus client dials (not a NATS client's nats://). */
function isHopbusUrl(u: string): boolean {
  return !u.startsWith('nats://');
}

export function encodeInfo(info: Record<string, unknown>): Buffer {
  return encodeHandshake(Op.INFO, packr.pack(info));
}
