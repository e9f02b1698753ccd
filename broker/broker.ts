import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { SubjectTree, isValidSubject } from '../topics/index.js';
import {
  ErrCode, FLAG_NO_RESPONDERS, FLAG_REQUEST, FLAG_TS, MsgView, Op, PayloadKind, Policy,
  maxFrameFor, msgSize, writeMsgHeader,
} from '../transports/protocol/index.js';
import { chunkNowNs } from '../metrics/clock.js';
import { writeU64 } from '../runtime/clock.js';
import { listenHttp } from './http.js';
import { Monitor } from './monitor.js';
import { SubjectCache } from '../transports/intern.js';
import type { Link, Listener } from '../transports/link.js';
import { listenStream } from '../transports/stream.js';
import { ShmHub, type ShmEndpoint, type ShmEndpointOptions } from '../transports/shm/hub.js';
import { listenInproc, type InprocEndpoint } from '../transports/inproc.js';
import { parseUrl } from '../transports/url.js';
import { resolveOptions, type BrokerOptions, type ResolvedOptions } from './config.js';
import { parsePolicy } from './policy.js';
import { Limiter } from './ratelimit.js';
import { Route, type QueueCursor, type SubjectLimit, type Subscription } from './route.js';
import { Session } from './session.js';
import { MulticastBridge } from './bridge.js';
import { DirectPlane } from './direct.js';

export { VERSION } from '../transports/protocol/index.js';
import { VERSION } from '../transports/protocol/index.js';

export interface BrokerCounters {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
  /** Published messages no subscription matched. */
  unrouted: number;
  slowConsumers: number;
  connectionsTotal: number;
  /** Connections refused or closed for a protocol violation. */
  protocolErrors: number;
  /** Messages dropped by slow-consumer policies, by reason. */
  droppedOldest: number;
  droppedNewest: number;
  /** Messages replaced by a newer one on the same subject (conflate policy). */
  conflated: number;
  /** Messages refused by a rate limit with action "refuse". */
  rateRefused: number;
  /** Total time publishers spent paused (rate limits, block policy), ms. */
  pausedMs: number;
}

/**
 * The broker: accepts links from every listener, keeps one Session per link, and
 * routes each PUB to the sessions whose subscriptions match. Single-threaded: all of
 * it runs on the thread that started it.
 */
export class Broker {
  readonly options: ResolvedOptions;
  readonly log: Logger;
  readonly tree: SubjectTree<Subscription, Route>;
  readonly serverId = randomBytes(8).toString('hex');
  readonly startedAt = Date.now();
  readonly counters: BrokerCounters = {
    msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, unrouted: 0, slowConsumers: 0, connectionsTotal: 0, protocolErrors: 0,
    droppedOldest: 0, droppedNewest: 0, conflated: 0, rateRefused: 0, pausedMs: 0,
  };
  /** Policy of subscriptions that name none (config slowConsumerPolicy). */
  readonly defaultPolicy: Policy;
  private readonly subjectLimits: SubjectLimit[];
  readonly sessions = new Set<Session>();
  readonly listeners: Listener[] = [];
  private nextId = 1;
  private pingTimer: NodeJS.Timeout | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private readonly view = new MsgView();
  /** Round-robin position per queue group name (see Route.cursor). */
  private readonly cursors = new Map<string, QueueCursor>();
  private readonly cursorFor = (queue: string): QueueCursor => {
    let c = this.cursors.get(queue);
    if (c === undefined) this.cursors.set(queue, (c = { next: 0 }));
    return c;
  };
  private readonly subjects = new SubjectCache(4096);
  readonly maxFrame: number;
  /** Monitoring and the latency service (monitor.ts). */
  readonly monitor: Monitor;
  /** The HTTP/WebSocket port once listening (http.ts), else null. */
  httpPort: number | null = null;
  /** Transports without a listener, made on the first endpoint() call. */
  private shm: ShmHub | null = null;
  private inproc: ReturnType<typeof listenInproc> | null = null;
  /** The multicast bridge (option `multicast`), once listen() has started it. */
  bridge: MulticastBridge | null = null;
  /** Direct delivery between shm clients (broker/direct.ts). */
  readonly direct = new DirectPlane(this);

  constructor(options: BrokerOptions = {}, logger?: Logger) {
    this.options = resolveOptions(options);
    this.maxFrame = maxFrameFor(this.options);
    this.log =
      logger ??
      pino({ name: this.options.name, level: this.options.logLevel }, pino.destination({ fd: this.options.logDestination, sync: true }));
    this.defaultPolicy = parsePolicy(this.options.slowConsumerPolicy)!;
    const now = performance.now();
    this.subjectLimits = this.options.subjectRates.map(({ pattern, ...limit }) => ({ pattern, limiter: new Limiter(limit, now) }));
    this.tree = new SubjectTree<Subscription, Route>({
      cacheSize: this.options.matchCacheSize,
      build: (subs, subject) => new Route(subs, subject, this.defaultPolicy, this.subjectLimits, this.cursorFor),
    });
    this.monitor = new Monitor(this);
  }

  /** The URL clients dial for the first listener (TCP if any). */
  get url(): string {
    return this.listeners[0]?.url ?? '';
  }

  get urls(): string[] {
    return this.listeners.map((l) => l.url);
  }

  async listen(): Promise<void> {
    const o = this.options;
    try {
      if (o.port !== null) {
        this.listeners.push(await listenStream(parseUrl(`tcp://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`), this.maxFrame, this.accept));
      }
      if (o.unix) this.listeners.push(await listenStream(parseUrl(`unix://${o.unix}`), this.maxFrame, this.accept));
      if (o.multicast) this.bridge = await MulticastBridge.start(this, o.multicast);
      if (o.httpPort !== null) this.listeners.push(await listenHttp(this, o.host, o.httpPort));
    } catch (err) {
      await Promise.all(this.listeners.map((l) => l.close()));
      this.listeners.length = 0;
      throw err;
    }
    if (o.pingIntervalMs > 0) {
      this.pingTimer = setInterval(this.keepalive, o.pingIntervalMs);
      this.pingTimer.unref();
    }
    this.monitor.start();
    if (o.writeDeadlineMs > 0) {
      this.deadlineTimer = setInterval(this.checkWriteDeadlines, Math.max(10, Math.min(1000, o.writeDeadlineMs / 4)));
      this.deadlineTimer.unref();
    }
    const { logDestination: _d, ...shown } = o;
    this.log.info({ config: shown, urls: this.urls, serverId: this.serverId, version: VERSION }, 'broker started');
  }

  /** Adopts a link from any transport: the one way in for every client. */
  readonly accept = (link: Link): void => {
    if (this.closing) {
      link.destroy();
      return;
    }
    this.counters.connectionsTotal++;
    const session = new Session(this.nextId++, link, this);
    if (this.sessions.size >= this.options.maxConnections) {
      link.start(session);
      session.fatal(ErrCode.PROTOCOL, `maximum connections reached (${this.options.maxConnections}); try again later or another server`);
      return;
    }
    this.sessions.add(session);
    link.start(session);
  };

  /**
   * An endpoint for a client without a URL: 'shm' makes a fresh pair of
   * SharedArrayBuffer rings for one worker thread (structured-cloneable: pass it in
   * workerData or postMessage; it serves one connection); 'inproc' is for clients on
   * this broker's own thread. Either way: connect(endpoint, options).
   */
  endpoint(kind: 'shm', options?: ShmEndpointOptions): ShmEndpoint;
  endpoint(kind: 'inproc'): InprocEndpoint;
  endpoint(kind: 'shm' | 'inproc', options?: ShmEndpointOptions): ShmEndpoint | InprocEndpoint {
    if (this.closing) throw new Error('the broker is closed: no new endpoints');
    if (kind === 'shm') return (this.shm ??= new ShmHub(this.serverId, this.accept, this.maxFrame)).endpoint(options);
    if (kind === 'inproc') return (this.inproc ??= listenInproc(this.serverId, this.accept, this.maxFrame)).endpoint;
    throw new TypeError(`endpoint kind must be 'shm' or 'inproc', got ${JSON.stringify(kind)}`);
  }

  /** Called by a session once its link is closed for good. */
  detach(session: Session): void {
    this.sessions.delete(session);
  }

  info(clientId: number, direct = false): Record<string, unknown> {
    const o = this.options;
    return {
      serverId: this.serverId,
      serverName: o.name,
      version: VERSION,
      proto: 1,
      clientId,
      maxPayload: o.maxPayload,
      maxHeaders: o.maxHeaders,
      maxSubscriptions: o.maxSubscriptions,
      maxPending: o.maxPending,
      pingIntervalMs: o.pingIntervalMs,
      // How often clients report their latency histograms on $SYS.report.<clientId>; 0 = do not.
      reportIntervalMs: o.latency ? o.monitorIntervalMs : 0,
      ...(direct ? { direct: true } : {}),
    };
  }

  /**
   * The hot path: one PUB frame in, the same bytes out to every interested session.
   * The frame is turned into a MSG in place (op byte, broker timestamp) and copied
   * into each receiving link's write buffer; nothing is re-encoded per subscriber.
   */
  publish(from: Session, buf: Buffer, off: number, len: number): boolean {
    const v = this.view.parse(buf, off, len);
    const c = this.counters;
    c.msgsIn++;
    c.bytesIn += len;
    if (v.payloadLen > this.options.maxPayload) {
      from.fatal(ErrCode.MAX_PAYLOAD, `maximum payload exceeded: ${v.payloadLen} bytes, the limit is ${this.options.maxPayload}`);
      return false;
    }
    if (v.headersLen > this.options.maxHeaders) {
      from.fatal(ErrCode.MAX_PAYLOAD, `maximum headers size exceeded: ${v.headersLen} bytes, the limit is ${this.options.maxHeaders}`);
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
    if (v.replyLen > 0 && !isValidSubject(v.reply())) {
      from.error(ErrCode.BAD_SUBJECT, `invalid reply subject "${v.reply()}"; the message was dropped`);
      return false;
    }
    const route = this.tree.match(subject);
    if (this.monitor.enabled) this.monitor.onPublish(route, buf, v.tsOff, len);
    // '$': a system subject (a client's latency report); routed as usual afterwards.
    if (subject.charCodeAt(0) === 36) this.monitor.onSystem(from, subject, buf, v.payloadOff, v.payloadLen, v.kind);
    if ((from.pubLimiter !== null || route.limiters.length > 0) && !from.admitPublish(len, route.limiters)) return false;
    // Out on multicast too (a copy, before this frame is patched into a MSG).
    const bridged = this.bridge !== null && this.bridge.export(buf, off, len, subject);
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
    this.fanout(route, buf, off, len, subject, from, v.sid);
    return true;
  }

  private fanout(route: Route, buf: Buffer, off: number, len: number, subject: string, from: Session | null, pubSeq = 0): void {
    const c = this.counters;
    const sessions = route.sessions;
    // Peers a direct publisher serves itself: skipped if it knew a matching subscription of theirs.
    const served = from !== null && from.direct !== null && from.direct.acked.size > 0 ? from.direct.acked : null;
    let n = 0;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i]!;
      if (served !== null && served.has(s) && route.sessionMinSeq[i]! <= pubSeq) continue;
      if (s.open) s.deliver(buf, off, len, 0, subject, route.sessionSubs[i]!, route.sessionPolicy[i]!, from);
      n++;
    }
    c.msgsOut += n;
    c.bytesOut += n * len;
    const groups = route.groups;
    for (let g = 0; g < groups.length; g++) {
      const members = groups[g]!;
      // Round robin, skipping members whose session is closing.
      const cursor = route.cursor[g]!;
      for (let tries = 0; tries < members.length; tries++) {
        const k = cursor.next++ % members.length;
        if (cursor.next >= 0x40000000) cursor.next = 0;
        const sub = members[k]!;
        if (!sub.session.open) continue;
        sub.session.deliver(buf, off, len, sub.sid, subject, sub.self, sub.policy, from);
        c.msgsOut++;
        c.bytesOut += len;
        if (sub.max > 0 && ++sub.delivered >= sub.max) sub.session.removeSub(sub);
        break;
      }
    }
    const limited = route.limited;
    for (let i = 0; i < limited.length; i++) {
      const sub = limited[i]!;
      if (++sub.delivered >= sub.max) sub.session.removeSub(sub);
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
    if (route.total === 0) {
      c.unrouted++;
      return;
    }
    buf[off + 5] &= FLAG_TS | FLAG_REQUEST;
    buf.writeUInt32LE(0, off + 8);
    if (tsOff >= 0) writeU64(buf, tsOff + 8, chunkNowNs());
    this.fanout(route, buf, off, len, subject, null);
  }

  /** Largest frame this broker accepts (and the bridge reassembles). */
  get maxFrameBytes(): number {
    return this.maxFrame;
  }

  /** True when at least one subscription matches `subject`. */
  hasSubscribers(subject: string): boolean {
    return this.tree.match(subject).total > 0;
  }

  /**
   * Publishes a message from the broker itself (the $SYS reports): a MSG frame with a
   * msgpack payload, routed to every matching subscription like any message.
   */
  publishInternal(subject: string, payload: Uint8Array): void {
    const route = this.tree.match(subject);
    if (route.total === 0) return;
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
    const s = Buffer.byteLength(reply);
    const total = msgSize(s, 0, 0, 0, false);
    const frame = Buffer.allocUnsafe(total);
    const at = writeMsgHeader(frame, 0, total, Op.MSG, FLAG_NO_RESPONDERS, PayloadKind.RAW, 0, s, 0, 0);
    frame.write(reply, at, s, 'utf8');
    this.fanout(route, frame, 0, total, reply, null);
  }

  /**
   * A consumer whose socket has accepted nothing for writeDeadlineMs is a slow
   * consumer even below the byte bounds; the disconnect policy closes it. Sessions
   * whose subscriptions all chose a dropping policy are left to that policy.
   */
  private readonly checkWriteDeadlines = (): void => {
    const now = performance.now();
    const limit = this.options.writeDeadlineMs;
    for (const s of this.sessions) {
      const since = s.link.writeBlockedSince;
      if (since === 0 || now - since < limit || !s.open) continue;
      if (s.hasPolicy(Policy.DISCONNECT)) s.slowConsumer(`a write blocked for more than ${limit} ms`);
    }
  };

  /** Counters and per-connection flow state, for monitoring. */
  metrics(): { counters: BrokerCounters; connections: ReturnType<Session['metrics']>[] } {
    return { counters: { ...this.counters }, connections: [...this.sessions].map((s) => s.metrics()) };
  }

  private readonly keepalive = (): void => {
    const max = this.options.maxPingsOut;
    for (const s of this.sessions) {
      if (!s.open) continue;
      if (s.pingsOut >= max) {
        s.fatal(ErrCode.STALE_CONNECTION, `stale connection: ${s.pingsOut} PINGs unanswered`);
        continue;
      }
      s.pingsOut++;
      if (s.pingSentAt === 0) s.pingSentAt = performance.now();
      s.sendBare(Op.PING);
    }
  };

  /**
   * Graceful shutdown: stop accepting, flush what is pending to every client, close.
   * Resolves when every connection has closed (forced after `graceMs`).
   */
  close(graceMs = 2000): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (this.pingTimer) clearInterval(this.pingTimer);
      if (this.deadlineTimer) clearInterval(this.deadlineTimer);
      this.monitor.stop();
      // server.close() stops accepting at once but settles only when its
      // connections are gone, so it is awaited after the sessions are closed.
      const stopped = Promise.all(this.listeners.map((l) => l.close()));
      this.shm?.close();
      this.inproc?.close();
      this.direct.close();
      const bridgeClosed = this.bridge?.close();
      const sessions = [...this.sessions];
      for (const s of sessions) s.shutdown();
      const force = setTimeout(() => {
        for (const s of sessions) s.link.destroy();
      }, graceMs);
      await Promise.all(sessions.map((s) => s.done));
      clearTimeout(force);
      await stopped;
      await bridgeClosed;
      this.log.info({ counters: this.counters }, 'broker stopped');
      this.log.flush?.();
    })();
    return this.closing;
  }
}

export interface StartedBroker {
  /** URL of the first listener, e.g. tcp://127.0.0.1:7400 */
  readonly url: string;
  readonly urls: string[];
  readonly broker: Broker;
  /** See Broker.endpoint: connect(b.endpoint('shm')) from a worker, connect(b.endpoint('inproc')) here. */
  endpoint: Broker['endpoint'];
  close(): Promise<void>;
}

/** Starts an embedded broker; `port: 0` picks a free port (read it back from `url`). */
export async function startBroker(options: BrokerOptions = {}, logger?: Logger): Promise<StartedBroker> {
  const broker = new Broker(options, logger);
  await broker.listen();
  return {
    url: broker.url,
    urls: broker.urls,
    broker,
    endpoint: broker.endpoint.bind(broker) as Broker['endpoint'],
    close: () => broker.close(),
  };
}
