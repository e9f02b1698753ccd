import { Packr, Unpackr } from 'msgpackr';
import {
  ErrCode, Op, OP_NAMES, OK_SIZE, PING_SIZE, PROTOCOL_VERSION, Policy, type ProtocolError,
  encodeErr, encodeHandshake, writeBare, writeOk,
} from '../transports/protocol/index.js';
import type { Link, LinkHandler } from '../transports/link.js';
import type { Broker } from './broker.js';
import { Outbound, type OutboundOwner, type OutboundPublisher } from './policy.js';
import { Limiter, rateLimitProblem, type RateLimit } from './ratelimit.js';
import { Subscription } from './route.js';
import { queueNameProblem } from '../topics/queue.js';
import type { ClientLatency } from './monitor.js';
import type { Member } from './direct.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

/** ERR codes that mean the peer broke the protocol (counted in protocolErrors). */
const PROTOCOL_CODES = new Set<number>([
  ErrCode.PROTOCOL, ErrCode.UNKNOWN_OP, ErrCode.FRAME_TOO_LARGE, ErrCode.MAX_PAYLOAD, ErrCode.VERSION, ErrCode.NOT_CONNECTED, ErrCode.BAD_SID,
]);

const enum State {
  HANDSHAKE,
  OPEN,
  CLOSED,
}

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
};

export interface SessionStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
}

/**
 * One client connection, over any transport. Owns its subscriptions and its
 * keepalive state; the broker owns routing. Used only on the broker's thread.
 */
export class Session implements LinkHandler, OutboundOwner, OutboundPublisher {
  name = '';
  lang = '';
  verbose = false;
  state = State.HANDSHAKE;
  readonly subs = new Map<number, Subscription>();
  /** PINGs sent and not answered yet. */
  pingsOut = 0;
  /** performance.now() when the oldest unanswered keepalive PING was sent; 0 when none is out. */
  pingSentAt = 0;
  /** Round trip of the last keepalive PING/PONG in ms; -1 until one has been measured. */
  rttMs = -1;
  /** The client's last latency report (monitoring), or null. */
  report: ClientLatency | null = null;
  readonly stats: SessionStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 };
  readonly connectedAt = Date.now();
  private handshakeTimer: NodeJS.Timeout | null = null;
  /** Why the session ended, for the disconnect log line. */
  private closeReason = '';
  /** Resolves once the link has closed for good. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  /** Outbound flow: the link fast path, held messages, slow-consumer policies. */
  readonly out: Outbound;
  /** Inbound flow control counters (this connection as a publisher). */
  readonly flow = { pausedMs: 0, throttled: 0, refused: 0 };
  /** This connection's publish rate limit (config, lowered by the client's request). */
  pubLimiter: Limiter | null = null;
  /** Its place in the direct plane, when it delivers to other shm clients itself. */
  direct: Member | null = null;
  /** Limiters (own or subject) this publisher is in debt with. */
  private readonly throttledBy: Limiter[] = [];
  private throttleTimer: NodeJS.Timeout | null = null;
  private readonly blockers = new Set<object>();
  private pausedAt = 0;
  private lastRefusalReport = -Infinity;

  constructor(
    readonly id: number,
    readonly link: Link,
    private readonly broker: Broker,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const o = broker.options;
    const now = performance.now();
    this.out = new Outbound(
      this,
      o.highWaterBytes,
      o.maxPending,
      o.maxPendingMsgs,
      o.deliverRate ? new Limiter({ ...o.deliverRate, action: 'refuse' }, now) : null,
    );
    if (o.publishRate) this.pubLimiter = new Limiter(o.publishRate, now);
    const ms = broker.options.handshakeTimeoutMs;
    if (ms > 0) {
      this.handshakeTimer = setTimeout(() => {
        this.fatal(ErrCode.PROTOCOL, `no CONNECT within ${ms} ms of connecting`);
      }, ms);
      this.handshakeTimer.unref();
    }
  }

  get open(): boolean {
    return this.state === State.OPEN;
  }

  // --- inbound -------------------------------------------------------------------

  onFrame(buf: Buffer, off: number, len: number): void {
    if (this.state !== State.OPEN) {
      if (this.state === State.HANDSHAKE) this.onHandshake(buf, off, len);
      return;
    }
    const op = buf[off + 4]!;
    switch (op) {
      case Op.PUB:
        this.stats.msgsIn++;
        this.stats.bytesIn += len;
        if (this.broker.publish(this, buf, off, len) && this.verbose && this.state === State.OPEN) this.ok(0);
        return;
      case Op.SUB:
        this.onSub(buf, off);
        return;
      case Op.UNSUB:
        this.onUnsub(buf.readUInt32LE(off + 8), buf.readUInt32LE(off + 12));
        return;
      case Op.PING:
        // With direct clients about, a PONG also says they all know this client's subscriptions.
        if (this.broker.direct.size > 0) this.broker.direct.ping(this);
        else this.sendBare(Op.PONG);
        return;
      case Op.DIRECT:
        if (this.direct !== null) this.broker.direct.onFrame(this.direct, buf, off, len);
        else this.fatal(ErrCode.PROTOCOL, 'DIRECT frames are for connections that asked for direct delivery');
        return;
      case Op.PONG:
        this.pingsOut = 0;
        if (this.pingSentAt > 0) {
          this.rttMs = performance.now() - this.pingSentAt;
          this.pingSentAt = 0;
        }
        return;
      case Op.ERR:
        this.broker.log.warn({ cid: this.id, client: this.name, code: buf.readUInt16LE(off + 6), text: buf.toString('utf8', off + 12, off + len) }, 'client reported an error');
        return;
      default:
        this.fatal(ErrCode.PROTOCOL, `op ${OP_NAMES[op]} is not sent by clients`);
    }
  }

  private onHandshake(buf: Buffer, off: number, len: number): void {
    const op = buf[off + 4]!;
    if (op !== Op.CONNECT) {
      this.fatal(ErrCode.NOT_CONNECTED, `expected CONNECT as the first frame, got ${OP_NAMES[op]}`);
      return;
    }
    const version = buf.readUInt16LE(off + 6);
    if (version !== PROTOCOL_VERSION) {
      this.fatal(ErrCode.VERSION, `protocol version ${version} is not supported; this broker speaks version ${PROTOCOL_VERSION}`);
      return;
    }
    let opts: unknown;
    try {
      opts = len > 8 ? unpackr.unpack(buf.subarray(off + 8, off + len)) : {};
    } catch (err) {
      this.fatal(ErrCode.PROTOCOL, `CONNECT options are not valid msgpack: ${(err as Error).message}`);
      return;
    }
    if (opts === null || typeof opts !== 'object' || Object.getPrototypeOf(opts) !== Object.prototype) {
      this.fatal(ErrCode.PROTOCOL, 'CONNECT options must be a msgpack map');
      return;
    }
    for (const [k, v] of Object.entries(opts)) {
      const type = CONNECT_KEYS[k];
      if (type === undefined) {
        this.fatal(ErrCode.PROTOCOL, `unknown CONNECT option "${k}"; known: ${Object.keys(CONNECT_KEYS).join(', ')}`);
        return;
      }
      if (typeof v !== type) {
        this.fatal(ErrCode.PROTOCOL, `CONNECT option "${k}" must be a ${type}`);
        return;
      }
    }
    const o = opts as { name?: string; lang?: string; verbose?: boolean; publishRate?: RateLimit; direct?: boolean };
    if (o.publishRate !== undefined) {
      const bad = rateLimitProblem(o.publishRate, 'publishRate');
      if (bad !== null) {
        this.fatal(ErrCode.BAD_OPTION, `CONNECT option ${bad}`);
        return;
      }
      this.pubLimiter = new Limiter(lowerLimit(this.broker.options.publishRate, o.publishRate), performance.now());
    }
    this.name = (o.name ?? '').slice(0, 256);
    this.lang = (o.lang ?? '').slice(0, 64);
    this.verbose = o.verbose === true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.state = State.OPEN;
    let direct = false;
    if (o.direct === true) {
      const plane = this.broker.direct;
      const why = this.verbose ? 'verbose acknowledges every PUB' : o.publishRate !== undefined ? 'the client asked for a publish rate limit' : plane.refusal(this);
      if (why === null) direct = true;
      else this.broker.log.info({ cid: this.id, client: this.name, reason: why }, 'direct delivery not granted');
    }
    const info = this.broker.info(this.id, direct);
    const frame = encodeHandshake(Op.INFO, packr.pack(info));
    this.link.send(frame, 0, frame.length);
    // After INFO: joining sends the client everybody's interest.
    if (direct) this.direct = this.broker.direct.join(this);
    this.broker.log.info({ cid: this.id, client: this.name, lang: this.lang, transport: this.link.transport, remote: this.link.remote, direct }, 'client connected');
  }

  private onSub(buf: Buffer, off: number): void {
    const sid = buf.readUInt32LE(off + 8);
    const p = buf.readUInt16LE(off + 12);
    const q = buf.readUInt16LE(off + 14);
    const pattern = buf.toString('utf8', off + 16, off + 16 + p);
    const queue = q === 0 ? '' : buf.toString('utf8', off + 16 + p, off + 16 + p + q);
    if (sid === 0) return this.fatal(ErrCode.BAD_SID, 'subscription id 0 is reserved');
    if (this.subs.has(sid)) return this.error(ErrCode.BAD_SID, `subscription id ${sid} is already in use on this connection`, sid);
    if (this.subs.size >= this.broker.options.maxSubscriptions) {
      return this.error(ErrCode.MAX_SUBSCRIPTIONS, `maximum subscriptions exceeded: this connection already holds ${this.subs.size} (limit ${this.broker.options.maxSubscriptions})`, sid);
    }
    const badQueue = q > 0 ? queueNameProblem(queue) : null;
    if (badQueue !== null) return this.error(ErrCode.BAD_SUBJECT, `invalid queue group: ${badQueue}`, sid);
    const policy: Policy = buf[off + 6]! === Policy.DEFAULT ? this.broker.defaultPolicy : (buf[off + 6]! as Policy);
    const sub = new Subscription(this, sid, pattern, queue, policy);
    try {
      this.broker.tree.insert(pattern, sub);
    } catch (err) {
      return this.error(ErrCode.BAD_SUBJECT, (err as Error).message, sid);
    }
    this.subs.set(sid, sub);
    this.broker.direct.added(sub);
    if (this.verbose) this.ok(sid);
  }

  private onUnsub(sid: number, max: number): void {
    const sub = this.subs.get(sid);
    // Unknown sids are not an error: the subscription may have auto-expired meanwhile.
    if (sub === undefined) {
      if (this.verbose) this.ok(sid);
      return;
    }
    if (max > 0) {
      // "After N more messages": counted from now. Re-insert so cached routes see the limit.
      this.broker.tree.remove(sub.pattern, sub);
      sub.max = sub.delivered + max;
      this.broker.tree.insert(sub.pattern, sub);
    } else {
      this.removeSub(sub);
    }
    if (this.verbose) this.ok(sid);
  }

  removeSub(sub: Subscription): void {
    if (!this.subs.delete(sub.sid)) return;
    this.broker.tree.remove(sub.pattern, sub);
    this.broker.direct.removed(sub);
  }

  // --- outbound ------------------------------------------------------------------

  /**
   * Queues one MSG frame (the same bytes for every receiving session). `sid` patches
   * the frame's subscription-id field in this session's copy only (queue deliveries);
   * `subs` and `policy` say whose it is and what to do if this consumer is behind.
   */
  deliver(buf: Buffer, off: number, len: number, sid: number, subject: string, subs: readonly Subscription[], policy: Policy, from: Session | null): void {
    if (this.out.deliver(buf, off, len, sid, subject, subs, policy, from) > 0) {
      this.stats.msgsOut++;
      this.stats.bytesOut += len;
    }
  }

  /** The link has written everything out: move held messages along. */
  onDrain(): void {
    if (this.state === State.OPEN) this.out.pump();
  }

  /** @internal OutboundOwner */
  slowConsumer(reason: string): void {
    this.broker.counters.slowConsumers++;
    this.fatal(ErrCode.SLOW_CONSUMER, `slow consumer: ${reason} towards this connection; it was closed`);
  }

  /** @internal OutboundOwner */
  countDrops(oldest: number, newest: number, conflated: number): void {
    const c = this.broker.counters;
    c.droppedOldest += oldest;
    c.droppedNewest += newest;
    c.conflated += conflated;
  }

  hasPolicy(p: Policy): boolean {
    for (const sub of this.subs.values()) if (sub.policy === p) return true;
    return false;
  }

  metrics() {
    const o = this.out;
    return {
      cid: this.id,
      name: this.name,
      transport: this.link.transport,
      remote: this.link.remote,
      connectedAt: this.connectedAt,
      subscriptions: this.subs.size,
      ...this.stats,
      pendingBytes: o.pendingBytes,
      heldMsgs: o.hold.length,
      ...o.stats,
      ...this.flow,
      /** Not being read right now (rate limit or a blocked consumer). */
      paused: this.paused,
      /** Keepalive round trip in µs, null until the first PONG. */
      rttUs: this.rttMs < 0 ? null : Math.round(this.rttMs * 1000),
    };
  }

  // --- being paused as a publisher ---------------------------------------------------
  // Two things stop the broker from reading a publisher's link: its rate limit
  // (throttle) and consumers with the block policy (blockers). Reading resumes when
  // neither holds it.

  /** OutboundPublisher: a consumer with the block policy is behind. */
  block(by: object): void {
    const wasPaused = this.paused;
    this.blockers.add(by);
    if (!wasPaused) this.pauseReading();
  }

  /** OutboundPublisher: that consumer has caught up (or gone). */
  unblock(by: object): void {
    if (!this.blockers.delete(by)) return;
    if (!this.paused) this.resumeReading();
  }

  private get paused(): boolean {
    return this.blockers.size > 0 || this.throttleTimer !== null;
  }

  private pauseReading(): void {
    this.pausedAt = performance.now();
    this.link.pause();
  }

  private resumeReading(): void {
    const ms = performance.now() - this.pausedAt;
    this.flow.pausedMs += ms;
    this.broker.counters.pausedMs += ms;
    if (this.state !== State.CLOSED) this.link.resume();
  }

  /**
   * Rate control of this publisher, per message: its own limit and the subject's.
   * Returns false when the message is refused. A `slow` limit in debt stops reading
   * this link until the debt is repaid (TCP back-pressure reaches the publisher).
   */
  admitPublish(len: number, limiters: readonly Limiter[]): boolean {
    const now = performance.now();
    const own = this.pubLimiter;
    if (own !== null && !this.admitOne(own, len, now)) return false;
    for (let i = 0; i < limiters.length; i++) if (!this.admitOne(limiters[i]!, len, now)) return false;
    return true;
  }

  private admitOne(l: Limiter, len: number, now: number): boolean {
    if (l.admit(len, now)) return true;
    if (l.refuse) {
      this.flow.refused++;
      this.broker.counters.rateRefused++;
      if (now - this.lastRefusalReport >= 1000) {
        this.lastRefusalReport = now;
        this.error(ErrCode.RATE_LIMITED, `rate limit exceeded: ${this.flow.refused} message(s) refused so far on this connection`);
      }
      return false;
    }
    if (!this.throttledBy.includes(l)) this.throttledBy.push(l);
    this.throttle(l.waitMs(now));
    return true;
  }

  private throttle(ms: number): void {
    if (this.throttleTimer !== null) return;
    const wasPaused = this.paused;
    this.throttleTimer = setTimeout(this.endThrottle, Math.max(1, ms));
    this.flow.throttled++;
    if (!wasPaused) this.pauseReading();
  }

  private readonly endThrottle = (): void => {
    this.throttleTimer = null;
    const now = performance.now();
    let wait = 0;
    for (const l of this.throttledBy) wait = Math.max(wait, l.waitMs(now));
    if (wait > 0 && this.state !== State.CLOSED) {
      this.throttleTimer = setTimeout(this.endThrottle, Math.max(1, wait));
      return;
    }
    this.throttledBy.length = 0;
    if (!this.paused) this.resumeReading();
  };

  sendBare(op: Op.PING | Op.PONG): void {
    const out = this.link.reserve(PING_SIZE);
    writeBare(out, this.link.writeOffset, op);
    this.link.commit(PING_SIZE);
  }

  private ok(ref: number): void {
    const out = this.link.reserve(OK_SIZE);
    writeOk(out, this.link.writeOffset, ref);
    this.link.commit(OK_SIZE);
  }

  /** A non-fatal error: the connection stays up. */
  error(code: number, text: string, ref = 0): void {
    const f = encodeErr(code, text, ref, false);
    this.link.send(f, 0, f.length);
  }

  /** The peer sent bytes that are not a frame: tell it why, then close. */
  onProtocolError(err: ProtocolError): void {
    this.fatal(ErrCode[err.code], err.message);
  }

  /** Sends ERR, then closes the connection after flushing it; the broker serves on. */
  fatal(code: number, text: string): void {
    if (this.state === State.CLOSED) return;
    if (PROTOCOL_CODES.has(code)) this.broker.counters.protocolErrors++;
    this.closeReason = text;
    this.broker.log.warn({ cid: this.id, client: this.name, remote: this.link.remote, code, reason: text }, 'closing connection');
    if (!this.link.closed) {
      const f = encodeErr(code, text, 0, true);
      this.link.send(f, 0, f.length);
      this.link.close();
    }
    this.teardown();
  }

  /** Closes gracefully (broker shutdown): flush what is pending, then close. */
  shutdown(): void {
    if (this.state === State.CLOSED) return;
    this.closeReason = 'broker shutting down';
    this.link.close();
    this.teardown();
  }

  onClose(err: Error | null): void {
    if (this.state !== State.CLOSED) {
      this.closeReason = err ? err.message : 'closed by client';
      this.teardown();
    }
    this.broker.log.info(
      { cid: this.id, client: this.name, remote: this.link.remote, reason: this.closeReason, ...this.stats },
      'client disconnected',
    );
    this.broker.detach(this);
    this.resolveDone();
  }

  /** Frees subscriptions at once so no further message is routed here. */
  private teardown(): void {
    this.state = State.CLOSED;
    this.out.close();
    if (this.throttleTimer !== null) clearTimeout(this.throttleTimer);
    this.throttleTimer = null;
    this.blockers.clear();
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    const tree = this.broker.tree;
    const subs = this.subs;
    const plane = this.broker.direct;
    plane.leave(this);
    tree.batch(() => {
      for (const sub of subs.values()) {
        tree.remove(sub.pattern, sub);
        plane.removed(sub);
      }
    });
    subs.clear();
  }
}

/** The stricter of the broker's limit and the client's request, field by field. */
function lowerLimit(config: RateLimit | undefined, asked: RateLimit): RateLimit {
  if (config === undefined) return asked;
  const min = (a: number | undefined, b: number | undefined) => (!a ? b : !b ? a : Math.min(a, b));
  return {
    msgsPerSec: min(config.msgsPerSec, asked.msgsPerSec),
    bytesPerSec: min(config.bytesPerSec, asked.bytesPerSec),
    burstMsgs: min(config.burstMsgs, asked.burstMsgs),
    burstBytes: min(config.burstBytes, asked.burstBytes),
    action: config.action ?? asked.action,
  };
}
