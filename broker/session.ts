/**
 * broker/session.ts: one client connection speaking the hopbus protocol, over any
 * transport: frames in, dispatched to the router, the handshake, liveness and the
 * direct plane; messages out through its Outbound (broker/policy.ts). It owns its
 * subscriptions; the router owns routing.
 *
 * It is the hopbus codec's `Subscriber` and `Publisher` (broker/subscription.ts). The NATS
 * session (broker/nats/session.ts) is a sibling class over the same SessionHost.
 *
 * Threading: the broker's thread. Must not import broker.ts (it gets a SessionHost).
 */
import {
  ERR_NAMES,
  ErrCode,
  FLAG_TS,
  Op,
  OP_NAMES,
  OK_SIZE,
  PING_SIZE,
  Policy,
  SUB_FROM_SEQ,
  SUB_FROM_TIME,
  SUB_SNAPSHOT,
  TS_BLOCK,
  type ProtocolError,
  encodeChallenge,
  encodeErr,
  maxFrameFor,
  writeBare,
  writeOk,
} from '../transports/protocol/index.js';
import type { Link, LinkHandler } from '../transports/link.js';
import type { Timer } from '../runtime/clock.js';
import { queueNameProblem } from '../topics/queue.js';
import type { Member } from './direct.js';
import type { FlowStats, PublisherGate } from './gate.js';
import { MAX_CONNECT_FRAME, authRefusal, directRefusal, encodeInfo, isRefusal, readConnect, readProof, serverInfo, type Hello } from './handshake.js';
import { admit } from './auth/admit.js';
import { newNonce, type Access, type Credentials, type Identity } from './auth/index.js';
import type { SessionHost } from './host.js';
import type { Router } from './router.js';
import type { Outbound, OutboundOwner, OutboundPublisher } from './policy.js';
import { applyUserLimits, sessionGate, sessionMetrics, sessionOutbound } from './sessionkit.js';
import type { ClientLatency } from './report.js';
import { Subscription, type Publisher, type Subscriber } from './subscription.js';
import { ImageFeed } from './cache/feed.js';
import { CatchUp } from './replaylive.js';
import { readU64 } from '../runtime/clock.js';

/** ERR codes that mean the peer broke the protocol (counted in protocolErrors). */
const PROTOCOL_CODES = new Set<number>([
  ErrCode.PROTOCOL,
  ErrCode.UNKNOWN_OP,
  ErrCode.FRAME_TOO_LARGE,
  ErrCode.MAX_PAYLOAD,
  ErrCode.VERSION,
  ErrCode.NOT_CONNECTED,
  ErrCode.BAD_SID,
]);

const enum State {
  HANDSHAKE,
  /** A CHALLENGE was sent for the nkey of its CONNECT: the next frame must be the PROOF. */
  CHALLENGE,
  OPEN,
  CLOSED,
}

export interface SessionStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
}

/** One client connection (see the top of this file). */
export class Session implements LinkHandler, OutboundOwner, OutboundPublisher, Subscriber, Publisher {
  name = '';
  lang = '';
  verbose = false;
  state = State.HANDSHAKE;
  readonly subs = new Map<number, Subscription>();
  /** Keepalive state, kept by broker/liveness.ts: PINGs unanswered, when the oldest was sent. */
  pingsOut = 0;
  pingSentAt = 0;
  /** Round trip of the last keepalive PING/PONG in ms; -1 until one has been measured. */
  rttMs = -1;
  /** Read deadline state, kept by broker/liveness.ts: the partial frame last seen, and since when. */
  partialSeen = 0;
  partialSeenAt = 0;
  /** The client's last latency report (monitoring), or null. */
  report: ClientLatency | null = null;
  readonly stats: SessionStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0 };
  readonly connectedAt = Date.now();
  private handshakeTimer: Timer | null;
  /** Why the session ended, for the disconnect log line. */
  private closeReason = '';
  /** Resolves once the link has closed for good. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  /** Outbound flow: the link fast path, held messages, slow-consumer policies. */
  readonly out: Outbound;
  /** Inbound flow control: rate limits and pauses of this connection as a publisher. */
  readonly gate: PublisherGate;
  /** Its place in the direct plane, when it delivers to other shm clients itself. */
  direct: Member | null = null;
  /** Who it authenticated as (broker/auth/), once open. */
  identity: Identity | null = null;
  /** Its permissions and limits; null when it has none to check. */
  access: Access | null = null;
  /**
   * Reads MSG frames with a sequence block: set by its first snapshot or replay SUB (an
   * older client never sends one, so it never gets such a frame). Subscriber.seqFrames.
   */
  seqFrames = false;
  /** Images of its snapshot subscriptions on their way (broker/cache/feed.ts), once it has made one. */
  feed: ImageFeed | null = null;
  /** Replay-then-live subscriptions still catching up (broker/replaylive.ts), or null. */
  catchups: CatchUp[] | null = null;
  /** While its CHALLENGE is out: the CONNECT and the nonce the PROOF must sign. */
  private challenged: { hello: Hello; nonce: string } | null = null;

  /** What the handshake timeout waits for, in its ERR (broker/liveness.ts). */
  get awaiting(): string {
    return this.state === State.CHALLENGE ? 'PROOF in answer to the nkey CHALLENGE' : 'CONNECT';
  }

  /** Inbound flow counters (paused time, throttles, refusals): the gate's. */
  get flow(): FlowStats {
    return this.gate.flow;
  }

  /** host.router, kept here: one load less per PUB. */
  private readonly router: Router;

  constructor(
    readonly id: number,
    readonly link: Link,
    private readonly host: SessionHost,
  ) {
    this.router = host.router;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.out = sessionOutbound(this, host);
    this.gate = sessionGate(this, host);
    this.handshakeTimer = host.liveness.expectConnect(this);
    // Until CONNECT is accepted, nothing bigger than a CONNECT is buffered.
    link.setMaxFrame?.(MAX_CONNECT_FRAME);
  }

  get open(): boolean {
    return this.state === State.OPEN;
  }

  // --- inbound -------------------------------------------------------------------

  onFrame(buf: Buffer, off: number, len: number): void {
    if (this.state !== State.OPEN) {
      if (this.state === State.HANDSHAKE) this.onHandshake(buf, off, len);
      else if (this.state === State.CHALLENGE) this.onProof(buf, off);
      return;
    }
    const op = buf[off + 4]!;
    switch (op) {
      case Op.PUB:
        this.stats.msgsIn++;
        this.stats.bytesIn += len;
        if (buf.readUInt32LE(off + 16) !== 0 && !this.headersOk(buf, off, len)) return;
        if (this.router.publish(this, buf, off, len) && this.verbose && this.state === State.OPEN) this.ok(0);
        return;
      case Op.SUB:
        this.onSub(buf, off);
        return;
      case Op.UNSUB:
        this.onUnsub(buf.readUInt32LE(off + 8), buf.readUInt32LE(off + 12));
        return;
      case Op.PING:
        // With direct clients about, a PONG also says they all know this client's subscriptions.
        if (this.host.direct.size > 0) this.host.direct.ping(this);
        else this.sendBare(Op.PONG);
        return;
      case Op.DIRECT:
        if (this.direct !== null) this.host.direct.onFrame(this.direct, buf, off, len);
        else this.fatal(ErrCode.PROTOCOL, 'DIRECT frames are for connections that asked for direct delivery');
        return;
      case Op.PONG:
        this.host.liveness.pong(this);
        return;
      case Op.ERR:
        this.host.log.warn(
          { cid: this.id, client: this.name, code: buf.readUInt16LE(off + 6), text: buf.toString('utf8', off + 12, off + len) },
          'client reported an error',
        );
        return;
      default:
        this.fatal(ErrCode.PROTOCOL, `op ${OP_NAMES[op]} is not sent by clients`);
    }
  }

  /** The first frame: the steps of broker/handshake.ts, then the session is open. */
  private onHandshake(buf: Buffer, off: number, len: number): void {
    const host = this.host;
    const hello = readConnect(buf, off, len, host.options);
    if (isRefusal(hello)) {
      this.fatal(hello.code, hello.text);
      return;
    }
    if (hello.creds?.nkey !== undefined && host.options.auth.wantsNonce) {
      // The nonce is this connection's alone, so a signature seen elsewhere is no use here.
      this.challenged = { hello, nonce: newNonce() };
      this.state = State.CHALLENGE;
      const f = encodeChallenge(Buffer.from(this.challenged.nonce, 'latin1'));
      this.link.send(f, 0, f.length);
      return;
    }
    this.admitHello(hello, hello.creds ?? {}, null);
  }

  /** The answer to the CHALLENGE: a PROOF, checked like any credentials; any other frame is refused. */
  private onProof(buf: Buffer, off: number): void {
    const { hello, nonce } = this.challenged!;
    this.challenged = null;
    const sig = readProof(buf, off);
    if (isRefusal(sig)) {
      this.fatal(sig.code, sig.text);
      return;
    }
    this.admitHello(hello, { ...hello.creds, sig }, nonce);
  }

  /** Steps 4 to 7 of broker/handshake.ts: authenticated, limited, told. */
  private admitHello(hello: Hello, creds: Credentials, nonce: string | null): void {
    const host = this.host;
    const admitted = admit(host, creds, this.link, this.id, nonce, 'hopbus');
    if (typeof admitted === 'string') {
      const r = authRefusal(admitted);
      this.fatal(r.code, r.text);
      return;
    }
    this.identity = admitted.identity;
    this.access = admitted.access;
    applyUserLimits(this.out, this.gate, host, admitted.identity.limits, hello.publishRate);
    this.name = hello.name;
    this.lang = hello.lang;
    this.verbose = hello.verbose;
    host.liveness.connected(this.handshakeTimer);
    this.handshakeTimer = null;
    this.state = State.OPEN;
    this.link.setMaxFrame?.(maxFrameFor(host.options));
    let direct = false;
    if (hello.direct) {
      const why =
        this.access !== null || admitted.identity.sessionLimited
          ? 'the connection has permissions or limits to check'
          : directRefusal(hello, () => host.direct.refusal(this));
      if (why === null) direct = true;
      else host.log.info({ cid: this.id, client: this.name, reason: why }, 'direct delivery not granted');
    }
    const previous = hello.resume !== null && hello.resume.serverId === host.serverId ? host.liveness.takeSlow(hello.resume.clientId) : undefined;
    const a = this.access;
    const limits = { maxPending: this.out.maxBytes, ...(a !== null ? { maxPayload: a.maxPayload, maxSubscriptions: a.maxSubscriptions } : {}) };
    const frame = encodeInfo(serverInfo(host.options, host.serverId, this.id, direct, previous, limits));
    this.link.send(frame, 0, frame.length);
    // After INFO: joining sends the client everybody's interest.
    if (direct) this.direct = host.direct.join(this);
    host.log.info({ cid: this.id, client: this.name, lang: this.lang, transport: this.link.transport, remote: this.link.remote, direct }, 'client connected');
  }

  /** A PUB's headers block must be a msgpack map of valid names to valid values; else the message is dropped and the client told. */
  private headersOk(buf: Buffer, off: number, len: number): boolean {
    const h = buf.readUInt32LE(off + 16);
    const at = off + 20 + ((buf[off + 5]! & FLAG_TS) !== 0 ? TS_BLOCK : 0) + buf.readUInt16LE(off + 12) + buf.readUInt16LE(off + 14);
    const o = this.host.options;
    // Over a size limit: the router refuses it (fatal MAX_PAYLOAD), whatever its contents.
    if (h > o.maxHeaders || len - (at - off) - h > o.maxPayload) return true;
    const bad = wireHeadersProblem(buf, at, h);
    if (bad === null) return true;
    this.host.counters.protocolErrors++;
    this.error(ErrCode.PROTOCOL, `invalid headers: ${bad}; the message was dropped`);
    return false;
  }

  private onSub(buf: Buffer, off: number): void {
    const flags = buf[off + 5]!;
    const sid = buf.readUInt32LE(off + 8);
    const p = buf.readUInt16LE(off + 12);
    const q = buf.readUInt16LE(off + 14);
    const pattern = buf.toString('utf8', off + 16, off + 16 + p);
    const queue = q === 0 ? '' : buf.toString('utf8', off + 16 + p, off + 16 + p + q);
    if (sid === 0) return this.fatal(ErrCode.BAD_SID, 'subscription id 0 is reserved');
    if (this.subs.has(sid)) return this.error(ErrCode.BAD_SID, `subscription id ${sid} is already in use on this connection`, sid);
    const maxSubs = this.access?.maxSubscriptions ?? this.host.options.maxSubscriptions;
    if (this.subs.size >= maxSubs) {
      return this.error(ErrCode.MAX_SUBSCRIPTIONS, `maximum subscriptions exceeded: this connection already holds ${this.subs.size} (limit ${maxSubs})`, sid);
    }
    const badQueue = q > 0 ? queueNameProblem(queue) : null;
    if (badQueue !== null) return this.error(ErrCode.BAD_SUBJECT, `invalid queue group: ${badQueue}`, sid);
    const denied = this.access?.subscribeRefusal(pattern, queue) ?? null;
    if (denied !== null) return this.error(ErrCode.AUTH, denied, sid);
    const snapshot = (flags & SUB_SNAPSHOT) !== 0;
    const from = flags & (SUB_FROM_SEQ | SUB_FROM_TIME);
    if ((snapshot || from !== 0) && q > 0) return this.error(ErrCode.BAD_OPTION, 'a snapshot or replay subscription cannot be in a queue group', sid);
    if (snapshot && from !== 0) return this.error(ErrCode.BAD_OPTION, 'a subscription asks for a snapshot or a replay, not both', sid);
    const recorder = this.host.recorder;
    if (from !== 0 && recorder === null) return this.error(ErrCode.BAD_OPTION, 'this broker has no journal to replay from (its config has no "journal")', sid);
    const policy: Policy = buf[off + 6]! === Policy.DEFAULT ? this.host.defaultPolicy : (buf[off + 6]! as Policy);
    const sub = new Subscription(this, sid, pattern, queue, policy);
    sub.brokerOnly = snapshot || from !== 0;
    try {
      this.router.subscribe(sub);
    } catch (err) {
      return this.error(ErrCode.BAD_SUBJECT, (err as Error).message, sid);
    }
    this.subs.set(sid, sub);
    this.host.direct.added(sub);
    if (snapshot) {
      // In the same synchronous step as router.subscribe above: see broker/cache/feed.ts.
      this.seqFrames = true;
      const host = this.host;
      (this.feed ??= new ImageFeed(this, host.cache, this.out.highWater, host.clock)).add(sub);
    } else if (from !== 0) {
      // Live interest first (above), then the journal up to it: broker/replaylive.ts.
      this.seqFrames = true;
      const start = readU64(buf, off + 16 + p + q);
      const c = new CatchUp(
        this,
        sub,
        recorder!,
        from === SUB_FROM_SEQ ? { seq: start } : { timeMs: start / 1000 },
        this.out.highWater,
        this.out.maxBytes,
        this.host.log,
      );
      (this.catchups ??= []).push(c);
      c.begin();
    }
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
      // "After N more messages": counted from now.
      this.router.limit(sub, max);
    } else {
      this.removeSub(sub);
    }
    if (this.verbose) this.ok(sid);
  }

  removeSub(sub: Subscription): void {
    if (!this.subs.delete(sub.sid)) return;
    this.router.unsubscribe(sub);
    this.host.direct.removed(sub);
    this.feed?.remove(sub);
    if (this.catchups !== null) this.endCatchUp(sub);
  }

  /** @internal CatchUpOwner */
  replayFailed(sub: Subscription, why: string): void {
    this.error(ErrCode.BAD_OPTION, why, sub.sid);
    this.removeSub(sub);
  }

  private endCatchUp(sub: Subscription): void {
    const list = this.catchups!;
    const i = list.findIndex((c) => c.sub === sub);
    if (i < 0) return;
    list[i]!.close();
    list.splice(i, 1);
    if (list.length === 0) this.catchups = null;
  }

  // --- outbound ------------------------------------------------------------------

  /**
   * Queues one MSG frame (the same bytes for every receiving session). `sid` patches
   * the frame's subscription-id field in this session's copy only (queue deliveries);
   * `subs` and `policy` say whose it is and what to do if this consumer is behind.
   */
  deliver(buf: Buffer, off: number, len: number, sid: number, subject: string, subs: readonly Subscription[], policy: Policy, from: Publisher | null): void {
    // allow_responses: a request received opens its reply subject to this connection.
    if (this.access !== null && this.access.grantsResponses) this.access.noteRequestFrame(buf, off, len);
    // Counted first, so that a slow-consumer close inside deliver() counts this message
    // among those queued for the connection (broker/liveness.ts SlowNotice).
    const stats = this.stats;
    stats.msgsOut++;
    stats.bytesOut += len;
    if (this.out.deliver(buf, off, len, sid, subject, subs, policy, from) === 0) {
      stats.msgsOut--;
      stats.bytesOut -= len;
    } else {
      if (this.feed !== null && this.feed.active) this.feed.live(subject, subs);
      if (this.catchups !== null) this.copyLive(buf, off, len, subs);
    }
  }

  /** Replay-then-live subscriptions in their tail copy live messages aside; those gone live leave the list. */
  private copyLive(buf: Buffer, off: number, len: number, subs: readonly Subscription[]): void {
    const list = this.catchups!;
    const seq = this.router.recordedSeq;
    for (let i = list.length - 1; i >= 0; i--) {
      const c = list[i]!;
      if (c.live) list.splice(i, 1);
      else c.onLive(buf, off, len, subs, seq);
    }
    if (list.length === 0) this.catchups = null;
  }

  /** The link has written everything out: move held messages along, then images. */
  onDrain(): void {
    if (this.state !== State.OPEN) return;
    this.out.drained();
    if (this.feed !== null && this.feed.active) this.feed.drained();
    if (this.catchups !== null) for (const c of this.catchups) c.drained();
  }

  /** @internal OutboundOwner */
  slowConsumer(reason: string): void {
    if (this.state === State.CLOSED) return;
    this.host.counters.slowConsumers++;
    // What it will never read is dropped, so that the ERR comes next, right behind what
    // is already in flight (best effort: a frozen peer may never read it). A client that
    // reconnects is told in its INFO, with the count of messages queued for it here.
    this.host.liveness.closedSlow(this.id, { closed: 'SLOW_CONSUMER', reason, msgsOut: this.stats.msgsOut });
    this.link.discard?.();
    this.fatal(ErrCode.SLOW_CONSUMER, `slow consumer: ${reason} towards this connection; it was closed`);
  }

  /** @internal OutboundOwner */
  countDrops(oldest: number, newest: number, conflated: number): void {
    const c = this.host.counters;
    c.droppedOldest += oldest;
    c.droppedNewest += newest;
    c.conflated += conflated;
  }

  hasPolicy(p: Policy): boolean {
    for (const sub of this.subs.values()) if (sub.policy === p) return true;
    return false;
  }

  metrics() {
    const { id, name, link, connectedAt, stats, out, gate, rttMs } = this;
    return sessionMetrics({ id, name, link, connectedAt, subscriptions: this.subs.size, stats, out, gate, rttMs });
  }

  /** OutboundPublisher: a consumer with the block policy is behind (see broker/gate.ts). */
  block(by: object): void {
    this.gate.block(by);
  }

  /** OutboundPublisher: that consumer has caught up (or gone). */
  unblock(by: object): void {
    this.gate.unblock(by);
  }

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
    const at = this.state === State.HANDSHAKE ? 'before CONNECT: ' : this.state === State.CHALLENGE ? 'in answer to the nkey CHALLENGE: ' : '';
    this.fatal(ErrCode[err.code], at + err.message);
  }

  /** Sends ERR, then closes the connection after flushing it; the broker serves on. */
  fatal(code: number, text: string): void {
    if (this.state === State.CLOSED) return;
    if (PROTOCOL_CODES.has(code)) this.host.counters.protocolErrors++;
    this.closeReason = text;
    this.host.log.warn({ cid: this.id, client: this.name, remote: this.link.remote, code: ERR_NAMES[code] ?? `E${code}`, reason: text }, 'closing connection');
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
    this.host.log.info({ cid: this.id, client: this.name, remote: this.link.remote, reason: this.closeReason, ...this.stats }, 'client disconnected');
    this.host.detach(this);
    this.resolveDone();
  }

  /** Frees subscriptions at once so no further message is routed here. */
  private teardown(): void {
    this.state = State.CLOSED;
    if (this.identity !== null) this.identity.connections--;
    this.identity = null;
    this.out.close();
    this.feed?.close();
    if (this.catchups !== null) for (const c of this.catchups) c.close();
    this.catchups = null;
    this.gate.close();
    this.host.liveness.connected(this.handshakeTimer);
    this.handshakeTimer = null;
    const plane = this.host.direct;
    plane.leave(this);
    this.router.unsubscribeAll(this.subs.values(), (sub) => plane.removed(sub));
    this.subs.clear();
  }
}

/** Header name bytes allowed: RFC 9110 token characters (client/codec.ts checks the same). */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;

/**
 * Why buf[at, at+len) is not a headers block (a msgpack map of token names to strings
 * without NUL or CR, filling it exactly; LF separates the values of a multi-valued header), or null. Walks the bytes; allocates nothing.
 */
export function wireHeadersProblem(buf: Buffer, at: number, len: number): string | null {
  const end = at + len;
  let p = at;
  const b = buf[p++]!;
  let n: number;
  if ((b & 0xf0) === 0x80) n = b & 0x0f;
  else if (b === 0xde && p + 2 <= end) {
    n = buf.readUInt16BE(p);
    p += 2;
  } else if (b === 0xdf && p + 4 <= end) {
    n = buf.readUInt32BE(p);
    p += 4;
  } else return 'not a msgpack map';
  for (let i = 0; i < 2 * n; i++) {
    if (p >= end) return 'the map is cut short';
    const t = buf[p++]!;
    let l: number;
    if ((t & 0xe0) === 0xa0) l = t & 0x1f;
    else if (t === 0xd9 && p + 1 <= end) l = buf[p++]!;
    else if (t === 0xda && p + 2 <= end) {
      l = buf.readUInt16BE(p);
      p += 2;
    } else if (t === 0xdb && p + 4 <= end) {
      l = buf.readUInt32BE(p);
      p += 4;
    } else return (i & 1) === 0 ? 'a header name is not a string' : 'a header value is not a string';
    if (p + l > end) return 'the map is cut short';
    if ((i & 1) === 0) {
      if (l === 0) return 'a header name is empty';
      for (let j = p; j < p + l; j++) if (TOKEN[buf[j]!] === 0) return 'a header name is not a token';
    } else {
      for (let j = p; j < p + l; j++) {
        const c = buf[j]!;
        if (c === 0 || c === 0x0d) return 'a header value contains NUL or CR';
      }
    }
    p += l;
  }
  return p === end ? null : 'bytes after the map';
}
