/**
 * broker/router.ts: the routing hot path. A message in, the same bytes out to every
 * session whose subscriptions match: the subject tree and its cached Routes, queue
 * group cursors, the subject intern cache, no-responders replies, the broker's own
 * publications. Like nats-server's sublist.go plus the fanout of client.go, and like
 * them it knows no sockets, timers or listeners: test/broker/router.test.ts drives it
 * with in-memory sessions.
 *
 * Protocol-agnostic by contract. The router's message format is the hopbus frame
 * (docs/PROTOCOL.md): `publish` takes a PUB (or MSG) frame and reads subject, reply,
 * headers, payload and flags through a MsgView over it; what a receiver gets is that
 * frame turned into a MSG, through the `Subscriber` interface (broker/subscription.ts).
 * Where another codec plugs in (the NATS client protocol, broker/nats/; the leafnode
 * uplink, broker/leaf/): its session parses its own wire, writes each inbound message as a hopbus
 * PUB frame into a scratch buffer (one encode per message, the only copy it adds) and
 * calls `publish` with itself as the `Publisher`; as a `Subscriber` it re-encodes the
 * MSG frame it is given into its wire format, once per fanout for all its sessions
 * (keyed on `fanouts`), not once per subscriber.
 *
 * Threading: the broker's thread; not re-entrant (links deliver frames asynchronously,
 * so no delivery publishes synchronously).
 *
 * Must not import: session.ts, broker.ts, monitor.ts, bridge.ts, direct.ts, anything
 * with a socket or a timer. It sees the monitor and the bridge through the two small
 * interfaces below.
 */
import { SubjectTree, isValidSubject } from '../topics/index.js';
import {
  ErrCode,
  FLAG_NO_RESPONDERS,
  FLAG_REQUEST,
  FLAG_TS,
  MsgView,
  Op,
  PayloadKind,
  type Policy,
  msgSize,
  writeMsgHeader,
} from '../transports/protocol/index.js';
import { SubjectCache } from '../transports/intern.js';
import { chunkNowNs } from '../metrics/clock.js';
import { writeU64 } from '../runtime/clock.js';
import type { BrokerCounters } from './counters.js';
import { Route, type QueueCursor, type SubjectLimit } from './route.js';
import type { Publisher, Subscription } from './subscription.js';
import type { Recorder } from './recorder.js';
import { LAST_PREFIX, type LastValueCache } from './cache/cache.js';
import type { CacheEntry } from './cache/store.js';

/** The monitor's view of each published message (broker/monitor.ts implements it). */
export interface PublishTap {
  /** Per-message counting is on (config `latency`). */
  readonly enabled: boolean;
  onPublish(route: Route, buf: Buffer, tsOff: number, len: number): void;
  /** A message on a `$`-subject (a client's latency report), before it is routed as usual. */
  onSystem(from: Publisher, subject: string, buf: Buffer, payloadOff: number, payloadLen: number, kind: number): void;
}

/** Where published messages also go out (the multicast bridge, broker/bridge.ts). */
export interface Exporter {
  /** Copies the PUB frame out if its subject is exported; true when it did. */
  export(buf: Buffer, off: number, len: number, subject: string): boolean;
}

/**
 * Told of every local subscription that comes and goes (not of uplinks' own, which are
 * remote interest): the leafnode uplinks announce local interest to their hubs with it
 * (broker/leaf/). Not called by limit(), which changes no interest.
 */
export interface InterestListener {
  interestChanged(sub: Subscription, delta: 1 | -1): void;
}

export interface RouterOptions {
  maxPayload: number;
  maxHeaders: number;
  matchCacheSize: number;
  /** Policy of subscriptions that name none. */
  defaultPolicy: Policy;
  subjectLimits: readonly SubjectLimit[];
}

/** A queue group's round-robin position and how many subscriptions are in it. */
interface QueueGroup extends QueueCursor {
  members: number;
}

export class Router {
  readonly tree: SubjectTree<Subscription, Route>;
  /** Set by the broker: null when there is nothing to tell. */
  tap: PublishTap | null = null;
  exporter: Exporter | null = null;
  /** Records accepted messages into the journal (option `journal`, broker/recorder.ts). */
  recorder: Recorder | null = null;
  /** Local interest changes go here (the leafnode uplinks, broker/leaf/); null when nobody listens. */
  interest: InterestListener | null = null;
  /**
   * The last-value cache (option `cache`, broker/cache/): set by the broker before any
   * route is built, so each Route knows its store (Route.lvc) and the per-message cost
   * for an uncached subject is one null check.
   */
  cache: LastValueCache | null = null;
  /**
   * The journal seq of the message being fanned out, 0 when it is not recorded: read by
   * replay-then-live subscriptions that buffer live messages (broker/replaylive.ts).
   */
  recordedSeq = 0;
  /**
   * Fanouts so far: increases by one before each message is delivered, so a codec
   * that re-encodes (see the top of this file) can tell a new message from the one it
   * has just encoded.
   */
  fanouts = 0;
  private readonly view = new MsgView();
  private readonly maxPayload: number;
  private readonly maxHeaders: number;
  /**
   * Round-robin position per queue group name (see Route.cursor), with the group's
   * member count: the entry goes with the last member, so distinct queue names that
   * come and go leave nothing behind.
   */
  private readonly cursors = new Map<string, QueueGroup>();
  private readonly cursorFor = (queue: string): QueueCursor => {
    let c = this.cursors.get(queue);
    if (c === undefined) this.cursors.set(queue, (c = { next: 0, members: 0 }));
    return c;
  };
  private readonly subjects = new SubjectCache(4096);

  constructor(
    o: RouterOptions,
    private readonly counters: BrokerCounters,
  ) {
    this.maxPayload = o.maxPayload;
    this.maxHeaders = o.maxHeaders;
    const { defaultPolicy, subjectLimits } = o;
    this.tree = new SubjectTree<Subscription, Route>({
      cacheSize: o.matchCacheSize,
      build: (subs, subject) => {
        const r = new Route(subs, subject, defaultPolicy, subjectLimits, this.cursorFor);
        if (this.cache !== null && this.cache.enabled) r.lvc = this.cache.storeFor(subject);
        return r;
      },
    });
  }

  // --- interest ------------------------------------------------------------------------

  /** Adds a subscription; throws a SubjectError when its pattern is invalid. */
  subscribe(sub: Subscription): void {
    this.tree.insert(sub.pattern, sub);
    if (sub.queue !== '') (this.cursorFor(sub.queue) as QueueGroup).members++;
    if (this.interest !== null && sub.session.remote !== true) this.interest.interestChanged(sub, 1);
  }

  unsubscribe(sub: Subscription): void {
    if (this.tree.remove(sub.pattern, sub)) this.left(sub);
  }

  /** A queue member is gone: its group's state goes with the last one. */
  private left(sub: Subscription): void {
    if (this.interest !== null && sub.session.remote !== true) this.interest.interestChanged(sub, -1);
    if (sub.queue === '') return;
    const g = this.cursors.get(sub.queue);
    if (g !== undefined && --g.members <= 0) this.cursors.delete(sub.queue);
  }

  /** Queue group names with state held (a member count and a round-robin position each). */
  get queueGroups(): number {
    return this.cursors.size;
  }

  /** "After `max` more messages": re-inserted so that cached routes see the limit. */
  limit(sub: Subscription, max: number): void {
    this.tree.remove(sub.pattern, sub);
    sub.max = sub.delivered + max;
    this.tree.insert(sub.pattern, sub);
  }

  /** Removes many at once (a session closing): routes are rebuilt once, not per subscription. */
  unsubscribeAll(subs: Iterable<Subscription>, each: (sub: Subscription) => void): void {
    const tree = this.tree;
    tree.batch(() => {
      for (const sub of subs) {
        if (tree.remove(sub.pattern, sub)) this.left(sub);
        each(sub);
      }
    });
  }

  /** True when at least one subscription matches `subject`. */
  hasSubscribers(subject: string): boolean {
    return this.tree.match(subject).total > 0;
  }

  // --- messages ------------------------------------------------------------------------

  /**
   * The hot path: one PUB frame in, the same bytes out to every interested session.
   * The frame is turned into a MSG in place (op byte, broker timestamp) and copied
   * into each receiving link's write buffer; nothing is re-encoded per subscriber.
   * Returns false when the message was refused (the publisher has been told why).
   */
  publish(from: Publisher, buf: Buffer, off: number, len: number): boolean {
    const v = this.view.parse(buf, off, len);
    const c = this.counters;
    c.msgsIn++;
    c.bytesIn += len;
    if (v.payloadLen > this.maxPayload) {
      from.fatal(ErrCode.MAX_PAYLOAD, `maximum payload exceeded: ${v.payloadLen} bytes, the limit is ${this.maxPayload}`);
      return false;
    }
    if (v.headersLen > this.maxHeaders) {
      from.fatal(ErrCode.MAX_PAYLOAD, `maximum headers size exceeded: ${v.headersLen} bytes, the limit is ${this.maxHeaders}`);
      return false;
    }
    // Only subjects that passed validation are cached, so a hit needs no check.
    let subject = this.subjects.lookup(buf, v.subjectOff, v.subjectLen);
    if (subject === null) {
      subject = v.subject();
      if (!isValidSubject(subject)) {
        from.error(ErrCode.BAD_SUBJECT, `invalid publish subject "${subject}"; the message was dropped`);
        return false;
      }
      this.subjects.store(buf, v.subjectOff, v.subjectLen, subject);
    }
    // Permissions and a user's payload limit (broker/auth/access.ts); null for an open broker.
    const access = from.access;
    if (access != null && !access.admit(from, subject, v.payloadLen)) return false;
    if (v.replyLen > 0 && !isValidSubject(v.reply())) {
      from.error(ErrCode.BAD_SUBJECT, `invalid reply subject "${v.reply()}"; the message was dropped`);
      return false;
    }
    const route = this.tree.match(subject);
    const tap = this.tap;
    if (tap !== null) {
      if (tap.enabled) tap.onPublish(route, buf, v.tsOff, len);
      // '$': a system subject (a client's latency report); routed as usual afterwards.
      if (subject.charCodeAt(0) === 36) tap.onSystem(from, subject, buf, v.payloadOff, v.payloadLen, v.kind);
    }
    const gate = from.gate;
    if ((gate.own !== null || route.limiters.length > 0) && !gate.admit(len, route.limiters)) return false;
    // '$': a request for a cached value ($HOPBUS.LAST.<subject>) is answered here, under the publisher's rate limits.
    if (subject.charCodeAt(0) === 36 && this.cache !== null && subject.startsWith(LAST_PREFIX)) return this.answerLast(from, subject, v.reply());
    // Into the journal as it arrived (before the frame is patched into a MSG below).
    this.recordedSeq = this.recorder === null ? 0 : this.recorder.record(subject, v);
    // Out on multicast too (a copy, before this frame is patched into a MSG).
    const bridged = this.exporter !== null && this.exporter.export(buf, off, len, subject);
    // Into the last-value cache: a copy as a MSG with the subject's sequence, which is
    // also what connections that read sequences get (Subscriber.seqFrames).
    const lvc = route.lvc;
    const cached = lvc === null ? null : lvc.put(subject, v, v.tsOff >= 0 ? chunkNowNs() : 0, this.cache!.now());
    if (route.total === 0) {
      if (!bridged) c.unrouted++;
      // Multicast subscribers are unknown to the broker: a bridged request waits for its timeout.
      if (v.flags & FLAG_REQUEST && v.replyLen > 0 && !bridged) this.noResponders(v.reply());
      return true;
    }
    buf[off + 4] = Op.MSG;
    buf[off + 5] &= FLAG_TS | FLAG_REQUEST;
    buf.writeUInt32LE(0, off + 8);
    // The time the chunk holding this frame arrived (one clock read per chunk, no BigInt).
    if (v.tsOff >= 0) writeU64(buf, v.tsOff + 8, chunkNowNs());
    // A direct publisher's PUB carries its interest seq in the sid field (broker/direct.ts).
    this.fanout(route, buf, off, len, subject, from, v.sid, cached);
    return true;
  }

  /** `$HOPBUS.LAST.<subject>`: answers on the reply subject with the subject's cached value (broker/cache/cache.ts). */
  private answerLast(from: Publisher, subject: string, reply: string): boolean {
    const target = subject.slice(LAST_PREFIX.length);
    if (reply === '') {
      from.error(ErrCode.BAD_SUBJECT, `"${subject}" is a request for a cached value: it needs a reply subject`);
      return false;
    }
    if (!isValidSubject(target) || target.includes('*') || target.includes('>')) {
      from.error(ErrCode.BAD_SUBJECT, `"${subject}": a cached value is asked for one subject, without wildcards`);
      return false;
    }
    const denied = from.access?.subscribeRefusal(target, '') ?? null;
    if (denied !== null) {
      from.error(ErrCode.AUTH, denied);
      return false;
    }
    const frame = this.cache!.answer(target, reply);
    const route = this.tree.match(reply);
    this.recordedSeq = 0;
    if (route.total > 0) this.fanout(route, frame, 0, frame.length, reply, null);
    return true;
  }

  private fanout(
    route: Route,
    buf: Buffer,
    off: number,
    len: number,
    subject: string,
    from: Publisher | null,
    pubSeq = 0,
    cached: CacheEntry | null = null,
  ): void {
    const c = this.counters;
    this.fanouts++;
    const sessions = route.sessions;
    // Peers a direct publisher serves itself: skipped if it knew a matching subscription of theirs.
    const served = from !== null && from.direct !== null && from.direct.acked.size > 0 ? from.direct.acked : null;
    let n = 0;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i]!;
      if (served !== null && served.has(s) && route.sessionMinSeq[i]! <= pubSeq) {
        // Served through a channel, but its snapshot/replay subscriptions only from here.
        const only = route.sessionBrokerOnly[i]!;
        if (only !== null && s.open) this.brokerOnly(only, s, buf, off, len, subject, route.sessionPolicy[i]!, from, cached);
        continue;
      }
      if (s.open) {
        if (cached !== null && s.seqFrames === true) s.deliver(cached.frame, 0, cached.len, 0, subject, route.sessionSubs[i]!, route.sessionPolicy[i]!, from);
        else s.deliver(buf, off, len, 0, subject, route.sessionSubs[i]!, route.sessionPolicy[i]!, from);
      }
      n++;
    }
    c.msgsOut += n;
    c.bytesOut += n * len;
    const groups = route.groups;
    const hits = route.groupHit;
    for (let g = 0; g < groups.length; g++) {
      const took = this.toGroup(route, g, buf, off, len, subject, from, cached);
      if (hits !== null) hits[g] = took ? 1 : 0;
    }
    const limited = route.limited;
    for (let i = 0; i < limited.length; i++) {
      const sub = limited[i]!;
      if (++sub.delivered >= sub.max) sub.session.removeSub(sub);
    }
    // Uplinks last: what local members took stays here. Nothing an uplink brought in goes back out.
    if (route.remotes.length > 0 && (from === null || from.remote !== true)) this.toRemotes(route, buf, off, len, subject, from);
  }

  /** One member of queue group `g` gets the message, round robin; false when no member could take it. */
  private toGroup(
    route: Route,
    g: number,
    buf: Buffer,
    off: number,
    len: number,
    subject: string,
    from: Publisher | null,
    cached: CacheEntry | null = null,
  ): boolean {
    const members = route.groups[g]!;
    // Round robin, skipping members whose session is closing.
    const cursor = route.cursor[g]!;
    for (let tries = 0; tries < members.length; tries++) {
      const k = cursor.next++ % members.length;
      if (cursor.next >= 0x40000000) cursor.next = 0;
      const sub = members[k]!;
      // A connection that asked not to hear itself leaves its own messages to the other members.
      if (!sub.session.open || ((sub.session as object) === from && sub.session.noEcho === true)) continue;
      if (cached !== null && sub.session.seqFrames === true) sub.session.deliver(cached.frame, 0, cached.len, sub.sid, subject, sub.self, sub.policy, from);
      else sub.session.deliver(buf, off, len, sub.sid, subject, sub.self, sub.policy, from);
      this.counters.msgsOut++;
      this.counters.bytesOut += len;
      if (sub.max > 0 && ++sub.delivered >= sub.max) sub.session.removeSub(sub);
      return true;
    }
    return false;
  }

  /** Scratch list of the queue groups handed to one uplink (reused: no array per message). */
  private readonly remoteQueues: string[] = [];

  /** The uplinks' share of a fanout: plain interest, and the queue groups no local member took (each to one uplink). */
  private toRemotes(route: Route, buf: Buffer, off: number, len: number, subject: string, from: Publisher | null): void {
    const hits = route.groupHit;
    const queues = this.remoteQueues;
    for (let r = 0; r < route.remotes.length; r++) {
      const up = route.remotes[r]!;
      if (!up.open) continue;
      queues.length = 0;
      if (hits !== null) {
        const gs = route.remoteGroups[r]!;
        for (let i = 0; i < gs.length; i++) {
          const g = gs[i]!;
          if (hits[g] === 0) {
            hits[g] = 1;
            queues.push(route.groupNames[g]!);
          }
        }
      }
      if (!route.remotePlain[r] && queues.length === 0) continue;
      up.deliverRemote(buf, off, len, subject, queues, from);
      this.counters.msgsOut++;
      this.counters.bytesOut += len;
    }
  }

  /**
   * A message from a leafnode hub (broker/leaf/uplink.ts): a PUB frame, its subject
   * validated, routed to local subscribers only: every plain subscription, and one
   * member of each queue group the hub named (`queues`; none: the hub gave the queue
   * groups' share elsewhere). Recorded into the journal like a local publish.
   */
  routeRemote(from: Publisher, buf: Buffer, off: number, len: number, subject: string, queues: readonly string[] | null): void {
    const v = this.view.parse(buf, off, len);
    const c = this.counters;
    c.msgsIn++;
    c.bytesIn += len;
    this.recordedSeq = this.recorder === null ? 0 : this.recorder.record(subject, v);
    const route = this.tree.match(subject);
    // Into the last-value cache like a local publish (see publish()).
    const lvc = route.lvc;
    const cached = lvc === null ? null : lvc.put(subject, v, v.tsOff >= 0 ? chunkNowNs() : 0, this.cache!.now());
    if (route.sessions.length === 0 && (queues === null || route.groups.length === 0)) {
      c.unrouted++;
      return;
    }
    buf[off + 4] = Op.MSG;
    buf[off + 5] &= FLAG_TS | FLAG_REQUEST;
    buf.writeUInt32LE(0, off + 8);
    if (v.tsOff >= 0) writeU64(buf, v.tsOff + 8, chunkNowNs());
    this.fanouts++;
    const sessions = route.sessions;
    let n = 0;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i]!;
      if (s.open) {
        if (cached !== null && s.seqFrames === true) s.deliver(cached.frame, 0, cached.len, 0, subject, route.sessionSubs[i]!, route.sessionPolicy[i]!, from);
        else s.deliver(buf, off, len, 0, subject, route.sessionSubs[i]!, route.sessionPolicy[i]!, from);
      }
      n++;
    }
    c.msgsOut += n;
    c.bytesOut += n * len;
    if (queues !== null) {
      for (let q = 0; q < queues.length; q++) {
        const g = route.groupNames.indexOf(queues[q]!);
        if (g >= 0) this.toGroup(route, g, buf, off, len, subject, from, cached);
      }
    }
    const limited = route.limited;
    for (let i = 0; i < limited.length; i++) {
      const sub = limited[i]!;
      if (++sub.delivered >= sub.max) sub.session.removeSub(sub);
    }
  }

  /** A copy for each of `subs` alone (sid-addressed), off the common path (see Route.sessionBrokerOnly). */
  private brokerOnly(
    subs: readonly Subscription[],
    s: Route['sessions'][number],
    buf: Buffer,
    off: number,
    len: number,
    subject: string,
    policy: Policy,
    from: Publisher | null,
    cached: CacheEntry | null,
  ): void {
    for (const sub of subs) {
      if (cached !== null && s.seqFrames === true) s.deliver(cached.frame, 0, cached.len, sub.sid, subject, sub.self, policy, from);
      else s.deliver(buf, off, len, sub.sid, subject, sub.self, policy, from);
      this.counters.msgsOut++;
      this.counters.bytesOut += len;
    }
  }

  /**
   * A MSG frame the multicast bridge heard (subject already validated): routed to
   * this broker's subscribers like a PUB, and never exported again (no loops).
   */
  routeImported(buf: Buffer, off: number, len: number, subject: string, tsOff: number): void {
    const c = this.counters;
    c.msgsIn++;
    c.bytesIn += len;
    const route = this.tree.match(subject);
    this.recordedSeq = 0;
    const lvc = route.lvc;
    const cached = lvc === null ? null : lvc.put(subject, this.view.parse(buf, off, len), tsOff >= 0 ? chunkNowNs() : 0, this.cache!.now());
    if (route.total === 0) {
      c.unrouted++;
      return;
    }
    buf[off + 5] &= FLAG_TS | FLAG_REQUEST;
    buf.writeUInt32LE(0, off + 8);
    if (tsOff >= 0) writeU64(buf, tsOff + 8, chunkNowNs());
    this.fanout(route, buf, off, len, subject, null, 0, cached);
  }

  /**
   * Publishes a message from the broker itself (the $SYS reports): a MSG frame with a
   * msgpack payload, routed to every matching subscription like any message.
   */
  publishInternal(subject: string, payload: Uint8Array): void {
    const route = this.tree.match(subject);
    if (route.total === 0) return;
    this.recordedSeq = 0;
    const s = Buffer.byteLength(subject);
    const total = msgSize(s, 0, 0, payload.length, false);
    const frame = Buffer.allocUnsafe(total);
    let at = writeMsgHeader(frame, 0, total, Op.MSG, 0, PayloadKind.MSGPACK, 0, s, 0, 0);
    at += frame.write(subject, at, s, 'utf8');
    frame.set(payload, at);
    this.fanout(route, frame, 0, total, subject, null);
  }

  /** Tells a requester at once that nobody subscribes to its subject. */
  private noResponders(reply: string): void {
    const route = this.tree.match(reply);
    if (route.total === 0) return;
    this.recordedSeq = 0;
    const s = Buffer.byteLength(reply);
    const total = msgSize(s, 0, 0, 0, false);
    const frame = Buffer.allocUnsafe(total);
    const at = writeMsgHeader(frame, 0, total, Op.MSG, FLAG_NO_RESPONDERS, PayloadKind.RAW, 0, s, 0, 0);
    frame.write(reply, at, s, 'utf8');
    this.fanout(route, frame, 0, total, reply, null);
  }
}
