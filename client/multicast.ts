/**
 * MulticastBus: the client API over UDP multicast, with no broker in the path.
 *
 *   const bus = await connect('udp://239.1.2.3:7500?iface=127.0.0.1', { channels: ['239.1.2.4:7500'] })
 *
 * The same calls as Bus (publish, subscribe, unsubscribe, request, flush, drain,
 * close, the 'error' and 'loss' events) and the same Msg and Subscription
 * classes. Messages travel as MSG frames (transports/protocol/) inside sequenced
 * datagrams (transports/multicast/). Subjects map onto channels with
 * topics/channels.ts; a subscription joins the groups of the channels it needs and
 * the bus filters what arrives by subject. See docs/MULTICAST.md.
 *
 * What differs from a broker connection, and why:
 *  - No queue groups: nobody is there to pick one member per message (OptionsError).
 *  - request() works (the reply travels on the channel of the reply subject), but
 *    no-responders cannot be known without a broker: a request nobody answers
 *    times out (TimeoutError).
 *  - flush() resolves once the groups of every subscription are joined and every
 *    message published before it has left this process; no peer acknowledges. With
 *    flow control (the default, transports/multicast/flow.ts) a message leaves when the
 *    receivers' window allows: until then it waits in the channel's ring (pendingBytes),
 *    and a publish that would make more than maxHeldBytes wait throws PendingLimitError,
 *    as a broker connection does at maxPendingBytes.
 *  - A source that drops this receiver from its window for being too slow says so: a
 *    'slow' event here, and 'receiver-slow' on that source's bus.
 *  - Slow consumers are handled here (client/delivery.ts, client/inbox.ts); 'block' is refused.
 *  - Loss the repair protocol could not undo is reported as 'loss' events with
 *    policy 'gap', and sources that go away as 'source-gone' events.
 *
 * Threading: one thread, like Bus.
 */
import { EventEmitter } from 'node:events';
import type { HopbusError } from '../runtime/errors.js';
import { ChannelMap } from '../topics/channels.js';
import { validatePattern, validateSubject } from '../topics/index.js';
import { FLAG_REQUEST, Op, msgSize } from '../transports/protocol/index.js';
import { monoNs, realClock, type Clock } from '../runtime/clock.js';
import {
  ENDPOINT_DEFAULTS,
  MulticastEndpoint,
  type ChannelAddr,
  type EndpointOptions,
  type EndpointStats,
  type GapEvent,
  type SourceEvent,
} from '../transports/multicast/endpoint.js';
import { resolveChannels, type ChannelSpec } from '../transports/multicast/config.js';
import type { Connection, ConnectionEvents, LossEvent, PublishOptions, RequestOptions } from './types.js';
import { encodeHeaders } from './codec.js';
import type { ConnectOptions } from './options.js';
import { ConnectionError, OptionsError, PendingLimitError, TimeoutError } from './errors.js';
import { INBOX_POLICIES, Inbox, MsgRate, type InboxPolicy } from './inbox.js';
import { Msg } from './msg.js';
import { Subscription, type MsgHandler, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';
import { FrameWriter } from './writer.js';
import { MsgDecoder } from './inbound.js';
import { InboxDelivery } from './delivery.js';
import { Registry } from './registry.js';
import { RequestMux } from './mux.js';
import { REQ_KEYS, SUB_KEYS, checkKeys, checkMax, checkMaxPending, subscribeArgs } from './checks.js';

const HEADERS_LIMIT = 'the multicast maximum headers size (option maxHeaders)';

/**
 * Options of a broker connection that mean nothing without a broker. They are
 * accepted and ignored, so code can move between tcp:// and udp:// by changing the
 * URL (the CLI passes `reconnect: false`, for instance).
 */
const BROKER_ONLY = [
  'reconnect',
  'maxReconnectAttempts',
  'reconnectDelayMs',
  'maxReconnectDelayMs',
  'reconnectJitterMs',
  'reconnectBufferBytes',
  'maxPendingBytes',
  'pingIntervalMs',
  'maxPingsOut',
  'verbose',
] as const;

export interface MulticastConnectOptions
  extends ChannelSpec, Partial<Omit<EndpointOptions, 'iface' | 'maxMessageBytes'>>, Pick<ConnectOptions, (typeof BROKER_ONLY)[number]> {
  /** Default flush() timeout (default 5,000 ms). */
  timeoutMs?: number;
  /** Shown in nothing on the wire; kept for symmetry with connect(). */
  name?: string;
  /** Largest payload published or reassembled (default 1 MiB). */
  maxPayload?: number;
  /** Largest headers block (default 64 KiB). */
  maxHeaders?: number;
  /** Stamp every message with its monotonic send time (msg.sentAt). */
  timestamps?: boolean;
  requestTimeoutMs?: number;
  /** Default policy of subscriptions that do not choose one (default 'drop-oldest'). */
  policy?: InboxPolicy;
  /** Default bound of a subscription's receive queue, in messages (default 65,536). */
  maxPending?: number;
  /** Callback time per event-loop turn before messages queue (default 10 ms). */
  dispatchBudgetMs?: number;
  /**
   * Delivery rate limit of every subscription of this bus (each its own budget):
   * messages over it wait in the subscription's queue, where its policy acts.
   * `burstMsgs` defaults to a tenth of a second's worth (at least 1).
   */
  deliverRate?: { msgsPerSec: number; burstMsgs?: number } | null;
  /** close()/drain() keep answering NAKs this long after the last publish (default 100 ms). */
  lingerMs?: number;
  /** Interface address; overrides ?iface= of the URL (default 127.0.0.1). */
  iface?: string;
}

/** A subscription's loss through the multicast repair protocol (policy 'gap') or its receive queue. */
export interface MulticastLossEvent extends LossEvent {
  /** For gaps: the source ('address:port/session') and channel ('group:port'). */
  source?: string;
  channel?: string;
  datagrams?: number;
  reason?: string;
}

export interface MulticastSourceEvent {
  source: string;
  channel: string;
  reason?: 'bye' | 'timeout';
}

/** The events of a MulticastBus, typed: the Connection's, with its loss events, plus the sources'. */
export interface MulticastEvents extends ConnectionEvents {
  loss: [event: MulticastLossEvent];
  'source-new': [event: MulticastSourceEvent];
  'source-gone': [event: MulticastSourceEvent];
  /** A gap was repaired, `ms` after it was seen. */
  repair: [event: { source: string; channel: string; ms: number }];
  /** A source dropped this receiver from its flow-control window: it was too slow (what it missed is reported as loss). */
  slow: [event: MulticastSlowEvent];
  /** This source dropped a receiver ('address:port/id') from its window. */
  'receiver-slow': [event: { receiver: string; channel: string }];
}

export interface MulticastSlowEvent {
  source: string;
  channel: string;
  /** The position (datagram sequence) this receiver had reached when it was dropped. */
  position: number;
}

export interface MulticastBusStats extends EndpointStats {
  msgsIn: number;
  bytesIn: number;
  bytesOut: number;
}

const OWN_KEYS = new Set([
  'name',
  'channels',
  'rules',
  'hashTokens',
  'fallback',
  'maxPayload',
  'maxHeaders',
  'timestamps',
  'requestTimeoutMs',
  'policy',
  'maxPending',
  'dispatchBudgetMs',
  'lingerMs',
  'iface',
  'timeoutMs',
  'deliverRate',
]);

/**
 * A brokerless client over UDP multicast. The same frame writer, subscription
 * registry, request mux and option checks as Bus; what is its own is the channel
 * map, the groups joined, and the receive queues with their dispatch budget.
 */
export class MulticastBus extends EventEmitter<MulticastEvents> implements Connection, SubscriptionOwner {
  readonly url: string;
  readonly map: ChannelMap;
  readonly channels: readonly ChannelAddr[];
  private readonly ep: MulticastEndpoint;
  private readonly maxPayload: number;
  private readonly maxHeaders: number;
  private readonly timestamps: boolean;
  private readonly requestTimeoutMs: number;
  private readonly defaultPolicy: InboxPolicy;
  private readonly defaultMaxPending: number;
  private readonly lingerMs: number;
  private readonly flushTimeoutMs: number;
  private readonly deliverRate: { msgsPerSec: number; burstMsgs: number } | null;
  private state: 'open' | 'draining' | 'closed' = 'open';
  private readonly subs = new Registry<Inbox>();
  /** Subscriptions per channel, to join and leave groups and to report gaps. */
  private readonly byChannel: Set<Inbox>[];
  private readonly joins = new Set<Promise<void>>();
  private readonly decoder = new MsgDecoder();
  private readonly writer = new FrameWriter();
  private readonly mux: RequestMux;
  private readonly delivery: InboxDelivery;
  private closedPromise: Promise<void> | null = null;
  private readonly counts = { msgsIn: 0, bytesIn: 0, bytesOut: 0 };

  constructor(url: string, options: MulticastConnectOptions = {}, clock: Clock = realClock) {
    super();
    this.mux = new RequestMux(this, clock, false, ' (over multicast nobody reports "no responders")');
    if (options === null || typeof options !== 'object') throw new OptionsError('connect options must be an object');
    if ((options as ConnectOptions).publishRate != null) {
      throw new OptionsError('connect option "publishRate" is enforced by a broker; over multicast there is none (see docs/MULTICAST.md)');
    }
    for (const k of Object.keys(options)) {
      if ((BROKER_ONLY as readonly string[]).includes(k) || k === 'publishRate') continue;
      if (!OWN_KEYS.has(k) && (!(k in ENDPOINT_DEFAULTS) || k === 'maxMessageBytes')) {
        throw new OptionsError(
          `unknown multicast connect option "${k}"; known options: ${[...OWN_KEYS, ...Object.keys(ENDPOINT_DEFAULTS).filter((x) => x !== 'iface' && x !== 'maxMessageBytes')].join(', ')}`,
        );
      }
    }
    let resolved;
    try {
      resolved = resolveChannels(url, options);
      this.map = new ChannelMap(resolved.map);
    } catch (err) {
      throw new OptionsError((err as Error).message);
    }
    const { addrs, iface: urlIface, ttl: urlTtl } = resolved;
    this.url = url;
    this.channels = addrs;
    this.maxPayload = posInt(options.maxPayload, 1024 * 1024, 'maxPayload');
    this.maxHeaders = posInt(options.maxHeaders, 64 * 1024, 'maxHeaders');
    this.timestamps = options.timestamps === true;
    this.requestTimeoutMs = posInt(options.requestTimeoutMs, 5000, 'requestTimeoutMs');
    this.defaultPolicy = options.policy ?? 'drop-oldest';
    if (!INBOX_POLICIES.includes(this.defaultPolicy))
      throw new OptionsError(`multicast option "policy" must be one of ${INBOX_POLICIES.join(', ')}, got ${JSON.stringify(this.defaultPolicy)}`);
    this.defaultMaxPending = posInt(options.maxPending, 65_536, 'maxPending');
    this.delivery = new InboxDelivery(this.deliveryHost, options.dispatchBudgetMs ?? 10);
    this.lingerMs = options.lingerMs ?? 100;
    this.flushTimeoutMs = posInt(options.timeoutMs, 5000, 'timeoutMs');
    const dr = options.deliverRate;
    if (dr != null) {
      if (typeof dr !== 'object' || !(typeof dr.msgsPerSec === 'number' && dr.msgsPerSec > 0 && Number.isFinite(dr.msgsPerSec))) {
        throw new OptionsError('multicast option "deliverRate" must be { msgsPerSec > 0, burstMsgs? }');
      }
      const burst = dr.burstMsgs ?? Math.max(1, Math.floor(dr.msgsPerSec / 10));
      if (!(Number.isFinite(burst) && burst >= 1)) throw new OptionsError('multicast option "deliverRate.burstMsgs" must be at least 1');
      this.deliverRate = { msgsPerSec: dr.msgsPerSec, burstMsgs: burst };
    } else {
      this.deliverRate = null;
    }
    const transport: Partial<EndpointOptions> = {};
    for (const k of Object.keys(ENDPOINT_DEFAULTS) as (keyof EndpointOptions)[]) {
      if (k !== 'iface' && k !== 'maxMessageBytes' && options[k as keyof MulticastConnectOptions] !== undefined) {
        (transport as Record<string, unknown>)[k] = options[k as keyof MulticastConnectOptions];
      }
    }
    const iface = options.iface;
    const ttl = transport.ttl ?? urlTtl;
    this.ep = newEndpoint(
      addrs,
      {
        ...transport,
        ...(ttl === undefined ? {} : { ttl }),
        iface: iface ?? urlIface ?? '127.0.0.1',
        // Frames reassembled are bounded by what a publisher may send.
        maxMessageBytes: msgSize(65_535, 65_535, this.maxHeaders, this.maxPayload, true),
      },
      {
        onFrame: (buf, off, len) => this.onFrame(buf, off, len),
        onLoss: (e) => this.onGap(e),
        onSourceNew: (s) => this.emit('source-new', { source: s.sourceId, channel: s.addr.key } satisfies MulticastSourceEvent),
        onSourceGone: (e) => this.onSourceGone(e),
        onRepair: (s, ms) => {
          if (this.listenerCount('repair') > 0) this.emit('repair', { source: s.sourceId, channel: s.addr.key, ms });
        },
        onSlow: (s, position) => this.emit('slow', { source: s.sourceId, channel: s.addr.key, position } satisfies MulticastSlowEvent),
        onReceiverSlow: (receiver, ch) => this.emit('receiver-slow', { receiver, channel: addrs[ch]!.key }),
      },
    );
    this.byChannel = addrs.map(() => new Set<Inbox>());
  }

  async open(): Promise<void> {
    await this.ep.open();
  }

  /** The URL this bus was made with. */
  get server(): string {
    return this.url;
  }

  get connected(): boolean {
    return this.state !== 'closed';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Bytes of datagrams waiting for the flow-control window (0 while receivers keep up). */
  get pendingBytes(): number {
    return this.ep.heldBytes;
  }

  /** This source's session id (in every datagram it sends). */
  get session(): number {
    return this.ep.session;
  }

  /** The unicast address datagrams leave from and NAKs come to. */
  get address(): string {
    return this.ep.address;
  }

  /** No broker, no INFO. */
  get info(): null {
    return null;
  }

  get stats(): MulticastBusStats {
    return { ...this.ep.stats(), ...this.counts };
  }

  // --- publish ---------------------------------------------------------------------------------

  publish(subject: string, data?: unknown, options?: PublishOptions): void {
    this.assertUsable();
    const spec = this.writer.spec;
    this.writer.options(options, this.maxHeaders, HEADERS_LIMIT);
    this.writeMsg(subject, spec.reply, spec.headers, data, 0);
  }

  private encodeHeaders(h: Record<string, string>): Buffer {
    return encodeHeaders(h, this.maxHeaders, HEADERS_LIMIT);
  }

  /** Encodes a MSG frame straight into the channel's open datagram (or its fragment buffer). */
  private writeMsg(subject: string, reply: string, headers: Buffer | null, data: unknown, flags: number): void {
    const wr = this.writer;
    wr.subject(subject);
    wr.payload(data, this.maxPayload, 'the multicast maximum payload (option maxPayload)');
    const ts = this.timestamps;
    const total = wr.size(reply, headers, flags, ts);
    const spec = wr.spec;
    spec.op = Op.MSG;
    spec.sid = 0;
    spec.weight = 0;
    spec.sentAt = ts ? monoNs() : 0;
    spec.brokerAt = 0;
    const s = this.ep.sender(this.map.channelOf(subject));
    if (s.held > 0 && !s.room(total)) {
      wr.done();
      throw new PendingLimitError(
        `${s.heldBytes} bytes wait for the flow-control window of channel ${s.addr.key} (limit maxHeldBytes ${this.ep.o.maxHeldBytes}): receivers are behind; await bus.flush() before publishing more`,
      );
    }
    wr.encode(s);
    wr.done();
    this.counts.bytesOut += total;
  }

  // --- subscribe -------------------------------------------------------------------------------

  subscribe(pattern: string, handler?: MsgHandler | SubscribeOptions, options?: SubscribeOptions): Subscription {
    this.assertUsable();
    if (this.state === 'draining') throw new ConnectionError('connection is draining: no new subscriptions');
    const [cb, opts] = subscribeArgs(handler, options);
    validatePattern(pattern);
    checkKeys(opts, SUB_KEYS, 'subscribe');
    if (opts.queue !== undefined)
      throw new OptionsError(
        'queue groups need a broker: over multicast every subscriber receives every message (connect to a broker, or use its multicast bridge)',
      );
    checkMax(opts);
    const policy = (opts.policy ?? this.defaultPolicy) as InboxPolicy;
    if (!INBOX_POLICIES.includes(policy)) {
      throw new OptionsError(
        `subscribe option "policy" over multicast must be one of ${INBOX_POLICIES.join(', ')}, got ${JSON.stringify(opts.policy)}${opts.policy === 'block' ? ' (a receiver cannot pause a multicast source)' : ''}`,
      );
    }
    checkMaxPending(opts);
    const { policy: _p, ...rest } = opts;
    const sub = new Subscription(this, this.subs.nextSid(), pattern, cb, rest);
    const rate = this.deliverRate === null ? null : new MsgRate(this.deliverRate.msgsPerSec, this.deliverRate.burstMsgs, performance.now());
    const inbox = new Inbox(sub, policy, opts.maxPending ?? this.defaultMaxPending, this.map.channelsFor(pattern), rate);
    this.subs.add(sub, inbox);
    for (const ch of inbox.channels) {
      const set = this.byChannel[ch]!;
      set.add(inbox);
      if (set.size === 1) {
        const p = this.ep.join(ch);
        this.joins.add(p);
        p.then(
          () => this.joins.delete(p),
          (err: Error) => {
            this.joins.delete(p);
            this.reportError(new ConnectionError(`cannot join multicast channel ${this.channels[ch]!.key}: ${err.message}`, { cause: err }));
          },
        );
      }
    }
    return sub;
  }

  /** @internal Subscription.unsubscribe() lands here. */
  unsubscribeSid(sub: Subscription, max: number): void {
    if (max > 0) return; // counted locally: deliver() stops at max
    this.forget(sub);
  }

  private forget(sub: Subscription, err?: Error): void {
    const inbox = this.subs.remove(sub);
    if (inbox === undefined) return;
    inbox.clear();
    this.delivery.remove(inbox);
    for (const ch of inbox.channels) {
      const set = this.byChannel[ch]!;
      set.delete(inbox);
      if (set.size === 0 && this.state !== 'closed') this.ep.leave(ch);
    }
    this.mux.forgotten(sub);
    sub.close(err);
  }

  /** @internal */
  reportError(err: HopbusError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err);
  }

  /** @internal A late msg.respond() on a closed or draining connection: an 'error' event (or a warning), never a throw. */
  respondFailed(err: HopbusError): void {
    this.reportError(err);
  }

  // --- receive ---------------------------------------------------------------------------------

  private onFrame(buf: Buffer, off: number, len: number): void {
    const d = this.decoder;
    const subject = d.read(buf, off, len);
    const v = d.view;
    this.counts.msgsIn++;
    this.counts.bytesIn += len;
    const list = this.subs.match(subject);
    if (list.length === 0) return;
    const msg = new Msg(v, subject, this);
    this.delivery.deliver(list, msg);
  }

  /** A gap the repair protocol could not close: every subscription listening on that channel hears of it. */
  private onGap(e: GapEvent): void {
    const set = this.byChannel[e.channel];
    if (set === undefined) return;
    for (const inbox of set) {
      inbox.sub.dropped += e.messages;
      this.emit('loss', {
        subscription: inbox.sub,
        subject: inbox.sub.subject,
        dropped: e.messages,
        conflated: 0,
        policy: 'gap',
        source: e.source.sourceId,
        channel: e.source.addr.key,
        datagrams: e.datagrams,
        reason: e.reason,
      } satisfies MulticastLossEvent);
    }
  }

  private onSourceGone(e: SourceEvent): void {
    this.emit('source-gone', { source: e.source.sourceId, channel: e.source.addr.key, reason: e.reason } satisfies MulticastSourceEvent);
  }

  // --- request / reply -------------------------------------------------------------------------

  /** A multicast connection has no broker, so no last-value cache: rejects with OptionsError. */
  last(subject: string): Promise<unknown> {
    return Promise.reject(new OptionsError(`last("${subject}") needs a broker's last-value cache; a multicast connection has none (connect to a broker)`));
  }

  /** Publishes a request and resolves with the first reply; without a broker, nobody can say "no responders": it times out. */
  request(subject: string, data?: unknown, options: RequestOptions = {}): Promise<Msg> {
    this.assertUsable();
    validateSubject(subject);
    checkKeys(options, REQ_KEYS, 'request');
    return this.mux.request(
      subject,
      options.timeoutMs ?? this.requestTimeoutMs,
      (reply) => {
        const headers = options.headers === undefined ? null : this.encodeHeaders(options.headers);
        this.writeMsg(subject, reply, headers, data, FLAG_REQUEST);
      },
      // The reply channel must be joined before anyone can answer.
      () => (this.joins.size > 0 ? Promise.allSettled([...this.joins]) : null),
    );
  }

  // --- flush, drain, close ---------------------------------------------------------------------

  /**
   * Sends every open datagram, waits until what the flow-control window holds has left
   * (TimeoutError after timeoutMs, with the messages still waiting), and waits for
   * pending group joins.
   */
  async flush(timeoutMs = this.flushTimeoutMs): Promise<void> {
    if (this.state === 'closed') throw new ConnectionError('connection is closed');
    const sent = this.ep.whenSent();
    if (this.joins.size === 0 && this.ep.heldBytes === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.all([sent, Promise.allSettled([...this.joins])]),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new TimeoutError('flush', timeoutMs)), timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every subscription, delivers what is queued, then closes (lingering for repairs). */
  async drain(): Promise<void> {
    if (this.state !== 'open') return this.closedPromise ?? undefined;
    this.state = 'draining';
    // What the window holds leaves first; if it cannot (TimeoutError), the drain fails with it, closed.
    try {
      await this.flush();
    } catch (err) {
      await this.close();
      throw err;
    }
    // Deliver what is queued before the subscriptions end.
    for (let i = 0; i < 1000 && this.delivery.queued > 0; i++) await new Promise((r) => setImmediate(r));
    for (const inbox of this.subs.list()) if (!this.mux.owns(inbox.sub)) this.forget(inbox.sub);
    await this.close();
  }

  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.state = 'closed';
    this.delivery.close();
    this.mux.close(new ConnectionError('connection closed'));
    for (const inbox of this.subs.list()) this.forget(inbox.sub);
    this.closedPromise = this.ep.close(this.lingerMs).then(() => {
      this.emit('close');
    });
    return this.closedPromise;
  }

  private assertUsable(): void {
    if (this.state === 'closed') throw new ConnectionError('connection is closed');
  }

  /** The delivery's view of this bus. */
  private readonly deliveryHost = {
    bus: this as MulticastBus,
    get closed(): boolean {
      return this.bus.state === 'closed';
    },
    forget: (sub: Subscription, err?: Error): void => this.forget(sub, err),
    reportError: (err: HopbusError): void => this.reportError(err),
    emitLoss: (e: LossEvent): void => {
      this.emit('loss', e);
    },
  };
}

/** The endpoint constructor checks iface and sizes: its errors are option errors here. */
function newEndpoint(...args: ConstructorParameters<typeof MulticastEndpoint>): MulticastEndpoint {
  try {
    return new MulticastEndpoint(...args);
  } catch (err) {
    throw new OptionsError((err as Error).message);
  }
}

function posInt(v: number | undefined, def: number, name: string): number {
  if (v === undefined) return def;
  if (!(Number.isSafeInteger(v) && v > 0)) throw new OptionsError(`multicast option "${name}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Connects a brokerless multicast client. `connect()` calls this for udp:// URLs. */
export async function connectMulticast(url: string, options?: MulticastConnectOptions): Promise<MulticastBus> {
  const bus = new MulticastBus(url, options);
  await bus.open();
  return bus;
}
