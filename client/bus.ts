import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { SubjectTree, validatePattern, validateSubject } from '../topics/index.js';
import { queueNameProblem } from '../topics/queue.js';
import {
  FLAG_FATAL, FLAG_REQUEST, FLAG_TS, MSG_HEADER, POLICY_NAMES, MsgView, Op, OP_NAMES, PING_SIZE, TS_BLOCK, UNSUB_SIZE, maxFrameFor,
  encodeHandshake, msgSize, subSize, writeBare, writeMsgHeader, writeSub, writeUnsub,
} from '../transports/protocol/index.js';
import { monoNs, writeU64 } from '../runtime/clock.js';
import { VERSION } from '../transports/protocol/index.js';
import { LatencyMeter, type ClientLatencyStats } from './latency.js';
import { StampSampler } from '../metrics/latency.js';
import { SubjectCache } from '../transports/intern.js';
import type { Link, LinkHandler } from '../transports/link.js';
import { canDial, canRedial, dial, toEndpoint, type ServerAddress } from '../transports/dial.js';
// The inproc dialer: pure JavaScript, so browsers get it too. The shm dialer is
// registered by the Node entry point (client/index.ts).
import '../transports/inproc.js';
import type { Endpoint } from '../transports/url.js';
import { EncodedPayload, encodeHeaders, encodePayload, packr, unpackr } from './codec.js';
import {
  ConnectionError, MaxPayloadError, NoRespondersError, OptionsError, PendingLimitError, ServerError, TimeoutError,
} from './errors.js';
import { Msg } from './msg.js';
import { resolveConnectOptions, type ConnectOptions, type ResolvedConnectOptions } from './options.js';
import { Subscription, type MsgHandler, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';
import { DirectRouter, type DirectHost } from './direct.js';

/** What the broker tells a client in INFO. */
export interface ServerInfo {
  serverId: string;
  serverName: string;
  version: string;
  proto: number;
  clientId: number;
  maxPayload: number;
  maxHeaders: number;
  maxSubscriptions: number;
  maxPending: number;
  pingIntervalMs: number;
  /** How often to report latency histograms on $SYS.report.<clientId>; 0 or absent = never. */
  reportIntervalMs?: number;
  /** The broker lets this (shm) client deliver to other shm clients directly (docs/SHM.md). */
  direct?: boolean;
}

export interface PublishOptions {
  /** Subject the receiver should answer on. */
  reply?: string;
  /** String headers, carried beside the payload. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  timeoutMs?: number;
  headers?: Record<string, string>;
}

/** Emitted as 'loss' when the broker reports messages a subscription lost to its slow-consumer policy. */
export interface LossEvent {
  subscription: Subscription;
  subject: string;
  dropped: number;
  conflated: number;
  policy: string;
}

export interface BusStats {
  msgsIn: number;
  bytesIn: number;
  msgsOut: number;
  bytesOut: number;
  reconnects: number;
}

/** What bus.stats() returns: the counters, and this client's latency figures. */
export interface ClientStats extends BusStats {
  /** Bytes queued towards the broker. */
  pendingBytes: number;
  /** Hops measured on timestamped messages received; null with `latency: false`. */
  latency: ClientLatencyStats | null;
}

/** bus.stats: call it for everything; its fields still read the counters (bus.stats.msgsIn). */
export type StatsFn = (() => ClientStats) & Readonly<BusStats>;

const enum State {
  CONNECTING,
  CONNECTED,
  RECONNECTING,
  DRAINING,
  CLOSED,
}

/** Largest frame accepted before INFO tells the real limits. */
const INITIAL_MAX_FRAME = 64 * 1024 * 1024 + 256 * 1024;
const PUB_KEYS = new Set(['reply', 'headers']);
const SUB_KEYS = new Set(['queue', 'max', 'maxPending', 'policy']);
const REQ_KEYS = new Set(['timeoutMs', 'headers']);

/** Write side shared by a live link and the disconnected backlog. */
interface Writer {
  reserve(n: number): Buffer;
  readonly writeOffset: number;
  commit(n: number): void;
}

/** Publishes made while disconnected, sent in order on reconnect. Bounded. */
class Backlog implements Writer {
  buf = Buffer.allocUnsafe(0);
  used = 0;
  constructor(private readonly limit: number) {}
  get writeOffset(): number {
    return this.used;
  }
  reserve(n: number): Buffer {
    if (this.used + n > this.limit) {
      throw new PendingLimitError(`not connected, and the reconnect buffer is full (${this.used} of ${this.limit} bytes): the message was not queued`);
    }
    if (this.used + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.min(this.limit, Math.max(4096, (this.used + n) * 2)));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    return this.buf;
  }
  commit(n: number): void {
    this.used += n;
  }
  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(0);
    this.used = 0;
    return out;
  }
}

interface PendingRequest {
  resolve(msg: Msg): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  subject: string;
}

interface PongWaiter {
  resolve(): void;
  reject(err: Error): void;
}

/** Binds one link's events to the bus, so events of a replaced link are told apart. */
class Conn implements LinkHandler {
  /** Resolves when the link has closed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  constructor(
    readonly bus: Bus,
    readonly link: Link,
    readonly ep: Endpoint,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }
  onFrame(buf: Buffer, off: number, len: number): void {
    this.bus.onFrame(this, buf, off, len);
  }
  onClose(err: Error | null): void {
    this.resolveClosed();
    this.bus.onLinkClose(this, err);
  }
}

/**
 * A connection to the bus: publish, subscribe, request, over any transport, with
 * reconnection. Used from one thread; events: 'error', 'disconnect', 'reconnect',
 * 'close'.
 */
export class Bus extends EventEmitter implements SubscriptionOwner {
  info: ServerInfo | null = null;
  readonly options: ResolvedConnectOptions;
  /** Counters of this connection (also readable as bus.stats.msgsIn etc.). */
  readonly counters: BusStats = { msgsIn: 0, bytesIn: 0, msgsOut: 0, bytesOut: 0, reconnects: 0 };
  /**
   * `bus.stats()`: counters, pending bytes and this client's latency figures. The
   * counters stay readable as fields (`bus.stats.msgsIn`), as before it was callable.
   */
  readonly stats: StatsFn;
  /** Latency histograms of received timestamped messages (null with `latency: false`). */
  private readonly latency: LatencyMeter | null;
  /** Which publishes carry timestamps when the latency service samples (null: all of them). */
  private readonly stamps: StampSampler | null;
  private reportTimer: NodeJS.Timeout | null = null;
  private state = State.CONNECTING;
  private conn: Conn | null = null;
  private readonly servers: Endpoint[];
  private serverIdx = 0;
  private readonly subs = new Map<number, Subscription>();
  /** Local dispatch of broadcast MSGs: non-queue subscriptions only. */
  private readonly tree = new SubjectTree<Subscription>({ cacheSize: 1024 });
  private nextSid = 1;
  private readonly pongWaiters: (PongWaiter | null)[] = [];
  private unsentPings = 0;
  private pingsOut = 0;
  private pingTimer: NodeJS.Timeout | null = null;
  private readonly backlog: Backlog;
  private readonly view = new MsgView();
  private readonly subjects = new SubjectCache(1024);
  /** Publish subjects already validated, with their UTF-8 length (negated when not ASCII). */
  private readonly validated = new Map<string, number>();
  private readonly payload = new EncodedPayload();
  private readonly inboxPrefix = `_INBOX.${randomBytes(8).toString('hex')}.`;
  private mux: Subscription | null = null;
  private readonly requests = new Map<string, PendingRequest>();
  private reqSeq = 0;
  private handshake: { resolve(): void; reject(err: Error): void; timer: NodeJS.Timeout } | null = null;
  private sleeper: { timer: NodeJS.Timeout; resolve(): void } | null = null;
  private closedPromise: Promise<void> | null = null;
  /** Direct delivery to other shm clients, when the broker granted it (client/direct.ts). */
  private direct: DirectRouter | null = null;

  constructor(servers: ServerAddress | ServerAddress[], options: ConnectOptions = {}) {
    super();
    this.options = resolveConnectOptions(options);
    const list = Array.isArray(servers) ? servers : [servers];
    if (list.length === 0) throw new OptionsError('connect needs at least one server address');
    this.servers = list.map((s) => toEndpoint(s));
    for (const ep of this.servers) {
      if (!canDial(ep)) throw new OptionsError(`transport "${ep.transport}" of "${ep.url}" is not available`);
    }
    this.backlog = new Backlog(this.options.reconnectBufferBytes);
    this.latency = this.options.latency ? new LatencyMeter() : null;
    this.stamps = this.options.timestamps && this.options.latency ? new StampSampler() : null;
    const counters = this.counters;
    const fn = (): ClientStats => ({ ...counters, pendingBytes: this.pendingBytes, latency: this.latency?.stats() ?? null });
    for (const k of Object.keys(counters) as (keyof BusStats)[]) Object.defineProperty(fn, k, { get: () => counters[k], enumerable: true });
    this.stats = fn as StatsFn;
  }

  /** The server currently connected to, or '' when disconnected. */
  get server(): string {
    return this.conn?.ep.url ?? '';
  }

  get isClosed(): boolean {
    return this.state === State.CLOSED;
  }

  get connected(): boolean {
    return this.state === State.CONNECTED || (this.state === State.DRAINING && this.conn !== null);
  }

  /** Bytes queued towards the broker and not yet handed to the operating system. */
  get pendingBytes(): number {
    if (this.conn === null) return this.backlog.used;
    return this.direct === null ? this.conn.link.pendingBytes : this.conn.link.pendingBytes + this.direct.pendingBytes;
  }

  /** First connection: tries each server once, in order. */
  async open(): Promise<void> {
    const errors: string[] = [];
    for (let i = 0; i < this.servers.length; i++) {
      const ep = this.servers[i]!;
      try {
        await this.attach(ep);
        this.serverIdx = i;
        this.startKeepalive();
        if (this.latency !== null) {
          this.reportTimer = setInterval(this.reportLatency, this.info?.reportIntervalMs || 1000);
          this.reportTimer.unref();
        }
        return;
      } catch (err) {
        errors.push(`${ep.url}: ${(err as Error).message}`);
      }
    }
    this.state = State.CLOSED;
    throw new ConnectionError(`could not connect to any server (${errors.join('; ')})`);
  }

  // --- publish -----------------------------------------------------------------------

  /**
   * Publishes `data` (Uint8Array: raw bytes; string: UTF-8; anything else: msgpack).
   * Throws SubjectError for an invalid subject and MaxPayloadError for a payload over
   * the server's limit; in both cases nothing is sent.
   */
  publish(subject: string, data?: unknown, options?: PublishOptions): void {
    this.assertUsable();
    let reply = '';
    let headers: Buffer | null = null;
    if (options !== undefined) {
      checkKeys(options, PUB_KEYS, 'publish');
      if (options.reply !== undefined) {
        validateSubject(options.reply);
        reply = options.reply;
      }
      if (options.headers !== undefined) headers = this.encodeHeaders(options.headers);
    }
    this.writePub(subject, reply, headers, data, 0);
  }

  private encodeHeaders(h: Record<string, string>): Buffer {
    return encodeHeaders(h, this.info?.maxHeaders ?? 64 * 1024);
  }


  private writePub(subject: string, reply: string, headers: Buffer | null, data: unknown, flags: number): void {
    const p = encodePayload(data, this.payload);
    const max = this.info?.maxPayload ?? Infinity;
    if (p.length > max) throw new MaxPayloadError(p.length, max);
    const sMeta = this.subjectMeta(subject);
    const sLen = sMeta < 0 ? -sMeta : sMeta;
    const rLen = reply === '' ? 0 : Buffer.byteLength(reply, 'utf8');
    const hLen = headers === null ? 0 : headers.length;
    // With the latency service on, only a sample of messages is stamped at high rates.
    const ts = this.options.timestamps && (this.stamps === null || this.stamps.next());
    const total = msgSize(sLen, rLen, hLen, p.length, ts);
    const w = this.writer();
    if (w !== this.backlog && this.pendingBytes + total > this.options.maxPendingBytes) {
      throw new PendingLimitError(`${this.pendingBytes} bytes are already queued towards the broker (limit ${this.options.maxPendingBytes}): await bus.flush() before publishing more`);
    }
    const weight = ts && this.stamps !== null ? this.stamps.weight : 0;
    const d = this.direct;
    if (d !== null && w !== this.backlog) {
      // Direct delivery: MSG frames straight into the peers' channels; a PUB to the
      // broker only for what it serves. The PUB's sid field carries the interest seq.
      const route = d.route(subject);
      const peers = route.peers;
      const sentAt = ts ? monoNs() : 0;
      for (let i = 0; i < peers.length; i++) {
        const peer = peers[i]!;
        this.encode(peer.link!, Op.MSG, 0, flags, ts, weight, sentAt, sentAt, total, subject, sMeta, sLen, reply, rLen, headers, hLen, p);
        d.wrote(peer, total);
      }
      if (route.broker) this.encode(w, Op.PUB, d.seq, flags, ts, weight, sentAt, 0, total, subject, sMeta, sLen, reply, rLen, headers, hLen, p);
    } else {
      this.encode(w, Op.PUB, 0, flags, ts, weight, ts ? monoNs() : 0, 0, total, subject, sMeta, sLen, reply, rLen, headers, hLen, p);
    }
    p.text = '';
    this.counters.msgsOut++;
    this.counters.bytesOut += total;
  }

  /** Writes one PUB or MSG frame of `total` bytes into `w`. */
  private encode(
    w: Writer, op: Op.PUB | Op.MSG, sid: number, flags: number, ts: boolean, weight: number, sentAt: number, brokerAt: number, total: number,
    subject: string, sMeta: number, sLen: number, reply: string, rLen: number, headers: Buffer | null, hLen: number, p: EncodedPayload,
  ): void {
    const buf = w.reserve(total);
    let at = writeMsgHeader(buf, w.writeOffset, total, op, flags | (ts ? FLAG_TS : 0), p.kind, sid, sLen, rLen, hLen);
    if (ts) {
      if (weight !== 0) buf[at - MSG_HEADER + 7] = weight;
      // Two u32 halves: no BigInt allocated per message. The broker fills in bytes 8..15
      // (a direct MSG has no broker hop: the send time again).
      writeU64(buf, at, sentAt);
      writeU64(buf, at + 8, brokerAt); // not buf.fill: its argument validation costs more than the clock read
      at += TS_BLOCK;
    }
    if (sMeta > 0) {
      // ASCII: a char loop is several times cheaper than Buffer#write for short strings.
      for (let i = 0; i < sLen; i++) buf[at + i] = subject.charCodeAt(i);
      at += sLen;
    } else {
      at += buf.write(subject, at, sLen, 'utf8');
    }
    if (rLen > 0) at += buf.write(reply, at, rLen, 'utf8');
    if (headers !== null) at += headers.copy(buf, at);
    if (p.text !== '' && p.kind === 1) buf.write(p.text, at, p.length, 'utf8');
    else if (p.length > 64) buf.set(p.bytes, at);
    else {
      // Small payloads: a byte loop beats TypedArray#set's fixed cost.
      const src = p.bytes;
      for (let i = 0; i < src.length; i++) buf[at + i] = src[i]!;
    }
    w.commit(total);
  }

  /**
   * Validates a publish subject (throws SubjectError) and returns its UTF-8 length,
   * negated when it is not pure ASCII. Results are remembered: a publisher repeats its
   * subjects, and validating them again on every message would be wasted work.
   */
  private subjectMeta(subject: string): number {
    const known = this.validated.get(subject);
    if (known !== undefined) return known;
    validateSubject(subject);
    const bytes = Buffer.byteLength(subject, 'utf8');
    const meta = bytes === subject.length ? bytes : -bytes;
    if (this.validated.size >= 4096) this.validated.clear();
    this.validated.set(subject, meta);
    return meta;
  }

  private writer(): Writer {
    return this.state === State.CONNECTED || (this.state === State.DRAINING && this.conn !== null) ? this.conn!.link : this.backlog;
  }

  // --- subscribe ---------------------------------------------------------------------

  /**
   * Subscribes to a subject pattern (`*` one token, `>` the rest). With a handler,
   * messages go to it; without, the subscription is an async iterable.
   */
  subscribe(pattern: string, handler?: MsgHandler | SubscribeOptions, options?: SubscribeOptions): Subscription {
    this.assertUsable();
    if (this.state === State.DRAINING) throw new ConnectionError('connection is draining: no new subscriptions');
    let cb: MsgHandler | null = null;
    if (typeof handler === 'function') cb = handler;
    else if (handler !== undefined) options = handler;
    validatePattern(pattern);
    const opts = options ?? {};
    checkKeys(opts, SUB_KEYS, 'subscribe');
    if (opts.queue !== undefined) {
      const bad = queueNameProblem(opts.queue);
      if (bad !== null) throw new OptionsError(`invalid queue group: ${bad}`);
    }
    if (opts.max !== undefined && !(Number.isSafeInteger(opts.max) && opts.max >= 0)) throw new OptionsError('subscribe option "max" must be a non-negative integer');
    if (opts.policy !== undefined && (opts.policy === ('default' as never) || !(POLICY_NAMES as readonly string[]).includes(opts.policy))) {
      throw new OptionsError(`subscribe option "policy" must be one of ${POLICY_NAMES.slice(1).join(', ')}, got ${JSON.stringify(opts.policy)}`);
    }
    if (opts.maxPending !== undefined && !(Number.isSafeInteger(opts.maxPending) && opts.maxPending > 0)) throw new OptionsError('subscribe option "maxPending" must be a positive integer');
    const sid = this.nextSid++;
    const sub = new Subscription(this, sid, pattern, cb, opts);
    this.subs.set(sid, sub);
    if (sub.queue === '') this.tree.insert(pattern, sub);
    this.direct?.addOwn(pattern);
    if (this.connected) this.sendSub(this.conn!.link, sub);
    return sub;
  }

  private sendSub(link: Link, sub: Subscription): void {
    const n = subSize(Buffer.byteLength(sub.subject), sub.queue ? Buffer.byteLength(sub.queue) : 0);
    const buf = link.reserve(n);
    writeSub(buf, link.writeOffset, sub.sid, sub.subject, sub.queue || undefined, sub.policy);
    link.commit(n);
    if (sub.max > 0) this.sendUnsub(link, sub.sid, sub.max - sub.received);
  }

  private sendUnsub(link: Link, sid: number, max: number): void {
    const buf = link.reserve(UNSUB_SIZE);
    writeUnsub(buf, link.writeOffset, sid, max);
    link.commit(UNSUB_SIZE);
  }

  /** @internal Subscription.unsubscribe() lands here. */
  unsubscribeSid(sub: Subscription, max: number): void {
    if (max > 0) {
      // The wire counts "N more messages" from now; `max` is the subscription's total.
      if (this.connected) this.sendUnsub(this.conn!.link, sub.sid, max - sub.received);
      return;
    }
    this.forget(sub);
    if (this.connected && !this.conn!.link.closed) this.sendUnsub(this.conn!.link, sub.sid, 0);
  }

  /** Removes a subscription locally and ends it. */
  private forget(sub: Subscription, err?: Error): void {
    if (!this.subs.delete(sub.sid)) return;
    if (sub.queue === '') this.tree.remove(sub.subject, sub);
    this.direct?.delOwn(sub.subject);
    if (sub === this.mux) this.mux = null;
    sub.close(err);
  }

  /** @internal */
  reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err);
  }

  // --- request / reply -----------------------------------------------------------------

  /**
   * Sends a request and resolves with the first reply. Rejects with NoRespondersError
   * at once if nobody subscribes to the subject, TimeoutError after timeoutMs.
   */
  request(subject: string, data?: unknown, options: RequestOptions = {}): Promise<Msg> {
    // Bad input throws at once, as publish() and subscribe() do.
    this.assertUsable();
    validateSubject(subject);
    checkKeys(options, REQ_KEYS, 'request');
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    if (this.mux === null) this.mux = this.subscribe(`${this.inboxPrefix}*`, this.onReply);
    const token = (++this.reqSeq).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(token);
        reject(new TimeoutError(`request to "${subject}"`, timeoutMs));
      }, timeoutMs);
      this.requests.set(token, { resolve, reject, timer, subject });
      try {
        const headers = options.headers === undefined ? null : this.encodeHeaders(options.headers);
        this.writePub(subject, this.inboxPrefix + token, headers, data, FLAG_REQUEST);
      } catch (err) {
        clearTimeout(timer);
        this.requests.delete(token);
        reject(err);
      }
    });
  }

  private readonly onReply = (msg: Msg): void => {
    const token = msg.subject.slice(this.inboxPrefix.length);
    const r = this.requests.get(token);
    if (r === undefined) return; // late reply after a timeout, or a second responder
    this.requests.delete(token);
    clearTimeout(r.timer);
    if (msg.noResponders) r.reject(new NoRespondersError(r.subject));
    else r.resolve(msg);
  };

  // --- flush, drain, close -------------------------------------------------------------

  /** Resolves once the broker has processed everything sent before this call. */
  flush(timeoutMs = this.options.timeoutMs): Promise<void> {
    if (this.state === State.CLOSED) return Promise.reject(new ConnectionError('connection is closed'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError('flush', timeoutMs)), timeoutMs);
      this.pongWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      if (this.connected) this.sendBare(Op.PING);
      else this.unsentPings++;
    });
  }

  /**
   * Stops every subscription, delivers the messages already on their way, then closes.
   * Publishes made before drain() are sent first.
   */
  async drain(): Promise<void> {
    if (this.state === State.CLOSED || this.state === State.DRAINING) return this.closedPromise ?? undefined;
    if (this.state === State.RECONNECTING) {
      // What was published while disconnected is sent once we are back: wait for that
      // (up to timeoutMs) rather than drop it.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.off('reconnect', done);
          this.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, this.options.timeoutMs);
        this.once('reconnect', done);
        this.once('close', done);
      });
      if ((this.state as State) === State.CLOSED || (this.state as State) === State.DRAINING) return this.closedPromise ?? undefined;
    }
    const wasConnected = this.connected;
    this.state = State.DRAINING;
    for (const sub of this.subs.values()) {
      if (sub !== this.mux && wasConnected) this.sendUnsub(this.conn!.link, sub.sid, 0);
    }
    if (wasConnected) {
      try {
        await this.flush();
      } catch {
        /* closing anyway */
      }
    }
    for (const sub of [...this.subs.values()]) if (sub !== this.mux) this.forget(sub);
    await this.close();
  }

  /** Closes now: what is queued is still written out; pending requests fail. */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.state = State.CLOSED;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.reportTimer) clearInterval(this.reportTimer);
    this.reportTimer = null;
    if (this.sleeper) {
      clearTimeout(this.sleeper.timer);
      this.sleeper.resolve();
    }
    const err = new ConnectionError('connection closed');
    for (const r of this.requests.values()) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    this.requests.clear();
    for (const w of this.pongWaiters.splice(0)) w?.reject(err);
    for (const sub of [...this.subs.values()]) this.forget(sub);
    this.endDirect();
    const conn = this.conn;
    this.conn = null;
    this.handshake?.reject(new ConnectionError('connection closed during the handshake'));
    if (conn !== null) conn.link.close();
    this.closedPromise = (conn === null ? Promise.resolve() : conn.closed).then(() => {
      this.emit('close');
    });
    return this.closedPromise;
  }

  private assertUsable(): void {
    if (this.state === State.CLOSED) throw new ConnectionError('connection is closed');
  }

  // --- link events -----------------------------------------------------------------------

  /** @internal */
  onFrame(conn: Conn, buf: Buffer, off: number, len: number): void {
    const op = buf[off + 4]!;
    if (op === Op.MSG) {
      this.onMsg(buf, off, len);
      return;
    }
    switch (op) {
      case Op.PONG: {
        this.pingsOut = 0;
        const w = this.pongWaiters.shift();
        if (w == null) return;
        const d = this.direct;
        if (d === null) {
          w.resolve();
          return;
        }
        // Direct channels are roads beside the broker: a flush also covers them (what we
        // wrote into them is in their rings; what peers wrote to us has been handed out).
        d.readAll();
        d.whenWritten(w.resolve);
        return;
      }
      case Op.PING:
        this.sendBareOn(conn.link, Op.PONG);
        return;
      case Op.OK:
        return;
      case Op.LOSS:
        this.onLoss(buf, off);
        return;
      case Op.ERR:
        this.onErr(conn, buf, off, len);
        return;
      case Op.INFO:
        this.onInfo(conn, buf, off, len);
        return;
      case Op.DIRECT:
        if (this.direct !== null && this.conn === conn) this.direct.onControl(buf, off, len);
        else conn.link.destroy(new ConnectionError('protocol error: the server sent DIRECT on a connection without direct delivery'));
        return;
      default:
        conn.link.destroy(new ConnectionError(`protocol error: the server sent ${OP_NAMES[op]}, which servers never send`));
    }
  }

  private onMsg(buf: Buffer, off: number, len: number): void {
    const v = this.view.parse(buf, off, len);
    let subject = this.subjects.lookup(buf, v.subjectOff, v.subjectLen);
    if (subject === null) {
      subject = v.subject();
      this.subjects.store(buf, v.subjectOff, v.subjectLen, subject);
    }
    this.counters.msgsIn++;
    this.counters.bytesIn += len;
    const lat = this.latency;
    if (lat === null) {
      this.dispatch(v, subject);
      return;
    }
    const arrived = lat.received(len);
    const tsOff = v.tsOff;
    if (tsOff < 0) {
      this.dispatch(v, subject);
      return;
    }
    const start = lat.transit(buf, tsOff, arrived);
    const weight = lat.lastWeight;
    this.dispatch(v, subject);
    if (start >= 0) lat.handled(start, weight);
  }

  private dispatch(v: MsgView, subject: string): void {
    if (v.sid !== 0) {
      const sub = this.subs.get(v.sid);
      if (sub !== undefined && !sub.deliver(new Msg(v, subject, this))) this.expired(sub);
      return;
    }
    const list = this.tree.match(subject);
    if (list.length === 0) return;
    const msg = new Msg(v, subject, this);
    for (let i = 0; i < list.length; i++) {
      const sub = list[i]!;
      if (!sub.deliver(msg)) this.expired(sub);
    }
  }

  /**
   * A subscription has had its `max` messages. The broker counts them too, but not
   * those delivered directly by other shm clients: then it is told.
   */
  private expired(sub: Subscription): void {
    this.forget(sub);
    if (this.direct !== null && this.connected && !this.conn!.link.closed) this.sendUnsub(this.conn!.link, sub.sid, 0);
  }

  /** DirectHost for the router: channel messages land where the broker's would. */
  private directHost(link: Link): DirectHost {
    return {
      link,
      onMsg: (buf, off, len) => this.onMsg(buf, off, len),
      reportError: (err) => this.reportError(err),
    };
  }

  private endDirect(): void {
    this.direct?.close();
    this.direct = null;
  }

  /** Once per report interval: close the latency interval and report it to the broker. */
  private readonly reportLatency = (): void => {
    const report = this.latency?.roll(this.options.name, this.counters.msgsOut);
    const every = this.info?.reportIntervalMs ?? 0;
    if (report == null || every <= 0 || this.state !== State.CONNECTED || this.info === null) return;
    try {
      this.writePub(`$SYS.report.${this.info.clientId}`, '', null, report, 0);
    } catch {
      /* a full send queue: this report is skipped, the next one will carry on */
    }
  };

  /** The broker's slow-consumer policy dropped or conflated messages of a subscription. */
  private onLoss(buf: Buffer, off: number): void {
    const sub = this.subs.get(buf.readUInt32LE(off + 8));
    if (sub === undefined) return;
    const dropped = buf.readUInt32LE(off + 12);
    const conflated = buf.readUInt32LE(off + 16);
    sub.dropped += dropped;
    sub.conflated += conflated;
    this.emit('loss', { subscription: sub, subject: sub.subject, dropped, conflated, policy: POLICY_NAMES[buf[off + 6]!] ?? 'unknown' } satisfies LossEvent);
  }

  private onErr(conn: Conn, buf: Buffer, off: number, len: number): void {
    const err = new ServerError(buf.readUInt16LE(off + 6), buf.toString('utf8', off + 12, off + len), (buf[off + 5]! & FLAG_FATAL) !== 0, buf.readUInt32LE(off + 8));
    if (this.handshake !== null && this.conn === conn) {
      this.handshake.reject(err);
      return;
    }
    if (err.sid !== 0) {
      const sub = this.subs.get(err.sid);
      if (sub) this.forget(sub, err);
    }
    this.reportError(err);
  }

  private onInfo(conn: Conn, buf: Buffer, off: number, len: number): void {
    if (this.handshake === null || this.conn !== conn) {
      conn.link.destroy(new ConnectionError('protocol error: unexpected INFO after the handshake'));
      return;
    }
    try {
      this.info = unpackr.unpack(buf.subarray(off + 8, off + len)) as ServerInfo;
    } catch (err) {
      this.handshake.reject(new ConnectionError(`protocol error: INFO is not valid msgpack: ${(err as Error).message}`));
      return;
    }
    conn.link.setMaxFrame?.(maxFrameFor(this.info));
    // Made now: the broker's interest frames follow INFO in the same read.
    if (this.info.direct === true && conn.link.direct !== undefined) {
      this.direct = new DirectRouter(this.directHost(conn.link), conn.link.direct, this.info.clientId, this.info.serverId);
      for (const sub of this.subs.values()) this.direct.addOwn(sub.subject);
    }
    this.handshake.resolve();
  }

  /** @internal */
  onLinkClose(conn: Conn, err: Error | null): void {
    if (this.conn !== conn) return;
    if (this.handshake !== null) {
      this.handshake.reject(err ?? new ConnectionError('connection closed during the handshake'));
      return;
    }
    this.conn = null;
    this.endDirect();
    if (this.state === State.CLOSED) return;
    this.emit('disconnect', err);
    // Keepalive PINGs are gone with the link; user flushes are re-sent after reconnecting.
    for (let i = this.pongWaiters.length - 1; i >= 0; i--) if (this.pongWaiters[i] === null) this.pongWaiters.splice(i, 1);
    this.unsentPings = this.pongWaiters.length;
    this.pingsOut = 0;
    if (this.state === State.DRAINING || !this.options.reconnect || !this.servers.some(canRedial)) {
      void this.close();
      return;
    }
    this.state = State.RECONNECTING;
    void this.reconnectLoop();
  }

  // --- connecting ------------------------------------------------------------------------

  /** Dials one server and runs the handshake; on success the link is live. */
  private async attach(ep: Endpoint): Promise<void> {
    const link = await dial(ep, { maxFrame: INITIAL_MAX_FRAME, timeoutMs: this.options.timeoutMs, transportOptions: { wait: this.options.wait } });
    if (this.state === State.CLOSED) {
      link.destroy();
      throw new ConnectionError('connection closed');
    }
    const conn = new Conn(this, link, ep);
    this.conn = conn;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new TimeoutError('handshake', this.options.timeoutMs)), this.options.timeoutMs);
        this.handshake = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
          timer,
        };
        link.start(conn);
        const hello = encodeHandshake(
          Op.CONNECT,
          packr.pack({
            name: this.options.name,
            lang: 'typescript',
            version: VERSION,
            verbose: this.options.verbose,
            timestamps: this.options.timestamps,
            ...(this.options.publishRate ? { publishRate: this.options.publishRate } : {}),
            ...(this.options.direct && link.direct !== undefined ? { direct: true } : {}),
          }),
        );
        link.send(hello, 0, hello.length);
      });
    } catch (err) {
      this.handshake = null;
      if (this.conn === conn) this.conn = null;
      this.endDirect();
      link.destroy();
      throw err;
    }
    this.handshake = null;
    if ((this.state as State) === State.CLOSED) {
      link.destroy();
      throw new ConnectionError('connection closed');
    }
    this.state = State.CONNECTED;
    // Re-establish everything the server forgot: subscriptions, then queued publishes, then flushes.
    for (const sub of this.subs.values()) this.sendSub(link, sub);
    if (this.backlog.used > 0) {
      const pending = this.backlog.take();
      link.send(pending, 0, pending.length);
    }
    for (; this.unsentPings > 0; this.unsentPings--) this.sendBareOn(link, Op.PING);
  }

  private async reconnectLoop(): Promise<void> {
    let attempts = 0;
    let delay = this.options.reconnectDelayMs;
    let lastErr: unknown = null;
    const max = this.options.maxReconnectAttempts;
    while (this.state === State.RECONNECTING) {
      for (let i = 1; i <= this.servers.length && this.state === State.RECONNECTING; i++) {
        const idx = (this.serverIdx + i) % this.servers.length;
        attempts++;
        try {
          await this.attach(this.servers[idx]!);
          this.serverIdx = idx;
          this.counters.reconnects++;
          this.emit('reconnect', this.servers[idx]!.url);
          return;
        } catch (err) {
          lastErr = err;
        }
        if (max >= 0 && attempts >= max) {
          if (this.state === State.RECONNECTING) {
            this.reportError(new ConnectionError(`gave up reconnecting after ${attempts} attempts`, { cause: lastErr }));
            void this.close();
          }
          return;
        }
      }
      await this.sleep(delay + Math.random() * this.options.reconnectJitterMs);
      delay = Math.min(delay * 2, this.options.maxReconnectDelayMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.sleeper = {
        timer: setTimeout(() => {
          this.sleeper = null;
          resolve();
        }, ms),
        resolve,
      };
    });
  }

  private startKeepalive(): void {
    const ms = this.options.pingIntervalMs;
    if (ms <= 0) return;
    this.pingTimer = setInterval(() => {
      if (!this.connected) return;
      if (this.pingsOut >= this.options.maxPingsOut) {
        this.conn!.link.destroy(new ConnectionError(`stale connection: ${this.pingsOut} PINGs unanswered`));
        return;
      }
      this.pingsOut++;
      this.pongWaiters.push(null);
      this.sendBare(Op.PING);
    }, ms);
    this.pingTimer.unref();
  }

  private sendBare(op: Op.PING | Op.PONG): void {
    this.sendBareOn(this.conn!.link, op);
  }

  private sendBareOn(link: Link, op: Op.PING | Op.PONG): void {
    const buf = link.reserve(PING_SIZE);
    writeBare(buf, link.writeOffset, op);
    link.commit(PING_SIZE);
  }
}

function checkKeys(obj: object, allowed: Set<string>, what: string): void {
  if (obj === null || typeof obj !== 'object') throw new OptionsError(`${what} options must be an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.has(k)) throw new OptionsError(`unknown ${what} option "${k}"; known options: ${[...allowed].join(', ')}`);
  }
}

