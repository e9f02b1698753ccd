import { EventEmitter } from 'node:events';
import type { HopbusError } from '../runtime/errors.js';
import { validatePattern, validateSubject } from '../topics/index.js';
import { queueNameProblem } from '../topics/queue.js';
import { FLAG_FATAL, FLAG_REQUEST, POLICY_NAMES, Op, OP_NAMES, SIGNATURE_BYTES, encodeProof, maxFrameFor } from '../transports/protocol/index.js';
import { monoNs, realClock, type Clock, type Timer } from '../runtime/clock.js';
import { LatencyMeter } from './latency.js';
import { newCounters, statsFn, type BusStats, type StatsFn } from './stats.js';
import { StampSampler } from '../metrics/latency.js';
import type { Link } from '../transports/link.js';
import { dial, type ServerAddress } from '../transports/dial.js';
// The inproc dialer: pure JavaScript, so browsers get it too. The shm dialer is
// registered by the Node entry point (client/index.ts).
import '../transports/inproc.js';
import type { Endpoint } from '../transports/url.js';
import { encodeHeaders, unpackr } from './codec.js';
import { ConnectionError, MessagesLostError, OptionsError, PendingLimitError, ServerError, SlowConsumerError, TimeoutError } from './errors.js';
import type { Msg } from './msg.js';
import { Inbound } from './inbound.js';
import { resolveConnectOptions, type ConnectOptions, type ResolvedConnectOptions } from './options.js';
import { Subscription, type MsgHandler, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';
import { DirectRouter, type DirectHost } from './direct.js';
import { FrameWriter, writeBareTo, writeSubTo, writeUnsubTo, type WriteTarget } from './writer.js';
import { Registry } from './registry.js';
import { RequestMux } from './mux.js';
import { Keepalive } from './keepalive.js';
import { Backlog, Reconnector, ServerList } from './reconnect.js';
import { Conn, Handshake, INITIAL_MAX_FRAME, explainHandshakeFailure, helloFrame, type Resume } from './connection.js';
import { BUS_SUB_KEYS, REQ_KEYS, checkKeys, checkMax, checkMaxPending, checkStart, subscribeArgs } from './checks.js';
import type { Connection, ConnectionEvents, GapEvent, LossEvent, PublishOptions, RequestOptions, ServerInfo } from './types.js';

export type { LossEvent, PublishOptions, RequestOptions, ServerInfo } from './types.js';
export type { BusStats, ClientStats, StatsFn } from './stats.js';

/** Counts the PUBs of a lost link that keeps none of them (it will not reconnect). */
const NO_BACKLOG = new Backlog(0);

const enum State {
  CONNECTING,
  CONNECTED,
  RECONNECTING,
  DRAINING,
  CLOSED,
}

/**
 * A connection to a broker: publish, subscribe, request, over any transport, with
 * reconnection. A facade over one job per file: the frame writer (writer.ts), the
 * subscription registry (registry.ts), the receive path (inbound.ts), the request
 * mux (mux.ts), PING/PONG and keepalive (keepalive.ts), the server list, reconnect
 * loop and backlog (reconnect.ts), the link and its handshake (connection.ts), the
 * counters (stats.ts), direct delivery (direct.ts). What stays here is the
 * connection's state machine (CONNECTING -> CONNECTED <-> RECONNECTING, DRAINING,
 * CLOSED), the publish path's choice of target, and the dispatch of the broker's
 * control frames. Used from one thread; events: 'error', 'loss', 'disconnect',
 * 'reconnect', 'close'.
 */
export class Bus extends EventEmitter<ConnectionEvents> implements Connection, SubscriptionOwner {
  info: ServerInfo | null = null;
  readonly options: ResolvedConnectOptions;
  /** Counters of this connection (also readable as bus.stats.msgsIn etc.). */
  readonly counters: BusStats = newCounters();
  /**
   * `bus.stats()`: counters, pending bytes and this client's latency figures. The
   * counters stay readable as fields (`bus.stats.msgsIn`), as before it was callable.
   */
  readonly stats: StatsFn;
  /** Latency histograms of received timestamped messages (null with `latency: false`). */
  private readonly latency: LatencyMeter | null;
  /** Which publishes carry timestamps when the latency service samples (null: all of them). */
  private readonly stamps: StampSampler | null;
  private reportTimer: Timer | null = null;
  private state = State.CONNECTING;
  private conn: Conn | null = null;
  private readonly servers: ServerList;
  private readonly reconnector: Reconnector;
  private readonly subs = new Registry<Subscription>();
  private readonly keepalive: Keepalive;
  private readonly backlog: Backlog;
  private readonly inbound: Inbound;
  private readonly writer = new FrameWriter();
  private readonly mux: RequestMux;
  private handshake: Handshake | null = null;
  private closedPromise: Promise<void> | null = null;
  /** Direct delivery to other shm clients, when the broker granted it (client/direct.ts). */
  private direct: DirectRouter | null = null;
  /** Messages handed towards the broker, numbered for what a PONG confirms (keepalive.ts). */
  private published = 0;
  /** PUBs the lost link never wrote, and how many of them the backlog kept (onLinkUnsent). */
  private unsentPubs = 0;
  private carriedPubs = 0;
  /** The connection had before (named in the next CONNECT), and how many MSGs it brought. */
  private resume: Resume | null = null;
  /** When the link was lost last, and the broker it was to (for the 'gap' event). */
  private lostAt = 0;
  private lostServerId = '';
  private msgsInAtAttach = 0;
  private prevReceived = 0;
  /** Told by the broker's INFO on reconnecting: the previous connection was closed as a slow consumer. */
  private notice: SlowConsumerError | null = null;

  constructor(
    servers: ServerAddress | ServerAddress[],
    options: ConnectOptions = {},
    private readonly clock: Clock = realClock,
  ) {
    super();
    this.options = resolveConnectOptions(options);
    this.servers = new ServerList(servers);
    this.backlog = new Backlog(this.options.reconnectBufferBytes);
    this.latency = this.options.latency ? new LatencyMeter() : null;
    this.stamps = this.options.timestamps && this.options.latency ? new StampSampler() : null;
    this.mux = new RequestMux(this, clock, true);
    this.inbound = new Inbound(this.subs, this.counters, this.latency, this, (sub) => this.expired(sub));
    this.keepalive = new Keepalive(this.pings, clock, this.options.pingIntervalMs, this.options.maxPingsOut);
    this.reconnector = new Reconnector(this.redial, this.servers, this.options, clock);
    this.stats = statsFn(this.counters, () => this.pendingBytes, this.latency);
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

  /**
   * First connection: tries each server once, in order; with waitOnFirstConnect, round
   * after round with the reconnect delays until one answers or maxReconnectAttempts.
   */
  async open(): Promise<void> {
    const errors: string[] = [];
    let last: unknown;
    const list = this.servers.all;
    const o = this.options;
    let attempts = 0;
    let delay = o.reconnectDelayMs;
    for (;;) {
      for (let i = 0; i < list.length; i++) {
        const ep = list[i]!;
        attempts++;
        try {
          await this.attach(ep);
          this.servers.current = i;
          this.keepalive.start();
          if (this.latency !== null) this.reportTimer = this.clock.interval(this.reportLatency, this.info?.reportIntervalMs || 1000).unref();
          return;
        } catch (err) {
          const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' || (err as Error).message.includes('ECONNREFUSED');
          const line = `${ep.url}: ${refused ? 'nothing listens there (is the broker running?): ' : ''}${(err as Error).message}`;
          if (errors.length < list.length) errors.push(line);
          else errors[(attempts - 1) % list.length] = line; // the latest round's reasons
          last = err;
        }
        if (o.waitOnFirstConnect && o.maxReconnectAttempts >= 0 && attempts >= o.maxReconnectAttempts) break;
      }
      if (!o.waitOnFirstConnect || (o.maxReconnectAttempts >= 0 && attempts >= o.maxReconnectAttempts)) break;
      await new Promise<void>((resolve) => this.clock.timeout(resolve, delay + Math.random() * o.reconnectJitterMs));
      delay = Math.min(delay * 2, o.maxReconnectDelayMs);
    }
    this.state = State.CLOSED;
    const tried = o.waitOnFirstConnect ? ` after ${attempts} attempts` : '';
    // The cause is the last server's answer: a ServerError with code AUTH when it refused the credentials.
    throw new ConnectionError(`could not connect to any server${tried} (${errors.join('; ')})`, { cause: last });
  }

  // --- publish -----------------------------------------------------------------------

  /**
   * Publishes `data` (Uint8Array: raw bytes; string: UTF-8; anything else: msgpack).
   * Throws SubjectError for an invalid subject and MaxPayloadError for a payload over
   * the server's limit; in both cases nothing is sent.
   */
  publish(subject: string, data?: unknown, options?: PublishOptions): void {
    this.assertUsable();
    const spec = this.writer.spec;
    this.writer.options(options, this.info?.maxHeaders ?? 64 * 1024);
    this.writePub(subject, spec.reply, spec.headers, data, 0);
  }

  private encodeHeaders(h: Record<string, string>): Buffer {
    return encodeHeaders(h, this.info?.maxHeaders ?? 64 * 1024);
  }

  private writePub(subject: string, reply: string, headers: Buffer | null, data: unknown, flags: number): void {
    const wr = this.writer;
    wr.payload(data, this.info?.maxPayload ?? Infinity);
    wr.subject(subject);
    // With the latency service on, only a sample of messages is stamped at high rates.
    const ts = this.options.timestamps && (this.stamps === null || this.stamps.next());
    const total = wr.size(reply, headers, flags, ts);
    const w = this.target();
    if (w !== this.backlog && this.pendingBytes + total > this.options.maxPendingBytes) {
      throw new PendingLimitError(
        `${this.pendingBytes} bytes are already queued towards the broker (limit ${this.options.maxPendingBytes}): await bus.flush() before publishing more`,
      );
    }
    const spec = wr.spec;
    spec.weight = ts && this.stamps !== null ? this.stamps.weight : 0;
    const d = this.direct;
    if (d !== null && w !== this.backlog) {
      // Direct delivery: MSG frames straight into the peers' channels; a PUB to the
      // broker only for what it serves. The PUB's sid field carries the interest seq.
      const route = d.route(subject);
      const peers = route.peers;
      const sentAt = ts ? monoNs() : 0;
      spec.op = Op.MSG;
      spec.sid = 0;
      spec.sentAt = sentAt;
      spec.brokerAt = sentAt;
      for (let i = 0; i < peers.length; i++) {
        const peer = peers[i]!;
        wr.encode(peer.link!);
        d.wrote(peer, total);
      }
      if (route.broker) {
        spec.op = Op.PUB;
        spec.sid = d.seq;
        spec.brokerAt = 0;
        wr.encode(w);
        this.published++;
      }
    } else {
      spec.op = Op.PUB;
      spec.sid = 0;
      spec.sentAt = ts ? monoNs() : 0;
      spec.brokerAt = 0;
      wr.encode(w);
      this.published++;
    }
    wr.done();
    this.counters.msgsOut++;
    this.counters.bytesOut += total;
  }

  /** Where a frame goes now: the live link, or the backlog while disconnected. */
  private target(): WriteTarget {
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
    const [cb, opts] = subscribeArgs(handler, options);
    validatePattern(pattern);
    checkKeys(opts, BUS_SUB_KEYS, 'subscribe');
    if (opts.queue !== undefined) {
      const bad = queueNameProblem(opts.queue);
      if (bad !== null) throw new OptionsError(`invalid queue group: ${bad}`);
    }
    checkMax(opts);
    if (opts.policy !== undefined && (opts.policy === ('default' as never) || !(POLICY_NAMES as readonly string[]).includes(opts.policy))) {
      throw new OptionsError(`subscribe option "policy" must be one of ${POLICY_NAMES.slice(1).join(', ')}, got ${JSON.stringify(opts.policy)}`);
    }
    checkMaxPending(opts);
    checkStart(opts);
    if (opts.snapshot === true && this.info !== null && this.info.snapshots !== true)
      throw new OptionsError(`the broker ${this.info.serverName} (version ${this.info.version}) does not serve snapshot subscriptions`);
    if (opts.from !== undefined && this.info !== null && this.info.replay !== true)
      throw new OptionsError(`the broker ${this.info.serverName} has no journal to replay from (its config has no "journal")`);
    const sub = new Subscription(this, this.subs.nextSid(), pattern, cb, opts);
    this.subs.add(sub, sub);
    this.direct?.addOwn(pattern);
    if (this.connected) writeSubTo(this.conn!.link, sub);
    return sub;
  }

  /** @internal Subscription.ready: the server has processed the SUB (or refused it: its ERR comes before the PONG). */
  confirm(): Promise<void> {
    return this.flush();
  }

  /** @internal Subscription.unsubscribe() lands here. */
  unsubscribeSid(sub: Subscription, max: number): void {
    if (max > 0) {
      // The wire counts "N more messages" from now; `max` is the subscription's total.
      if (this.connected) writeUnsubTo(this.conn!.link, sub.sid, max - sub.received);
      return;
    }
    this.forget(sub);
    if (this.connected && !this.conn!.link.closed) writeUnsubTo(this.conn!.link, sub.sid, 0);
  }

  /** Removes a subscription locally and ends it. */
  private forget(sub: Subscription, err?: Error): void {
    if (this.subs.remove(sub) === undefined) return;
    this.direct?.delOwn(sub.subject);
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
    return this.mux.request(subject, options.timeoutMs ?? this.options.requestTimeoutMs, (reply) => {
      const headers = options.headers === undefined ? null : this.encodeHeaders(options.headers);
      this.writePub(subject, reply, headers, data, FLAG_REQUEST);
    });
  }

  /**
   * The newest message on `subject` in the broker's last-value cache, decoded (as
   * `msg.value`), or undefined when the broker keeps none for it: a request to the
   * reserved subject `$HOPBUS.LAST.<subject>` (docs/CACHE.md).
   */
  async last(subject: string, options: RequestOptions = {}): Promise<unknown> {
    validateSubject(subject);
    if (subject.includes('*') || subject.includes('>')) throw new OptionsError(`last() takes one subject, without wildcards, got "${subject}"`);
    const msg = await this.request(`$HOPBUS.LAST.${subject}`, undefined, options);
    const h = msg.headers;
    if (msg.noResponders || (h !== undefined && h['Hopbus-Last'] === 'none')) return undefined;
    return msg.value;
  }

  // --- flush, drain, close -------------------------------------------------------------

  /**
   * Resolves once the broker has processed everything sent before this call, across
   * reconnects; rejects with MessagesLostError if some of it may be lost (keepalive.ts).
   */
  flush(timeoutMs = this.options.timeoutMs): Promise<void> {
    if (this.state === State.CLOSED) return Promise.reject(new ConnectionError('connection is closed'));
    return this.keepalive.flush(timeoutMs);
  }

  /**
   * Stops every subscription, delivers the messages already on their way, then closes.
   * Publishes made before drain() are sent first; if they cannot be (no broker within
   * timeoutMs, or the final flush fails), it closes and rejects.
   */
  async drain(): Promise<void> {
    if (this.state === State.CLOSED || this.state === State.DRAINING) return this.closedPromise ?? undefined;
    if (this.state === State.RECONNECTING) {
      // What was published while disconnected is sent once we are back: wait for that
      // (up to timeoutMs). If no broker comes back, the backlog is lost: say so.
      await new Promise<void>((resolve) => {
        const done = () => {
          this.clock.clear(timer);
          this.off('reconnect', done);
          this.off('close', done);
          resolve();
        };
        const timer = this.clock.timeout(done, this.options.timeoutMs);
        this.once('reconnect', done);
        this.once('close', done);
      });
      if ((this.state as State) === State.DRAINING) return this.closedPromise ?? undefined;
      if ((this.state as State) !== State.CONNECTED) {
        const unconfirmed = this.published - this.keepalive.acked;
        const lost =
          unconfirmed + this.keepalive.untold > 0
            ? this.keepalive.takeUntold(`drain() found no broker to send them to within ${this.options.timeoutMs} ms (timeoutMs)`, unconfirmed)
            : null;
        this.backlog.clear();
        await this.close();
        if (lost !== null) throw lost;
        return;
      }
    }
    const wasConnected = this.connected;
    this.state = State.DRAINING;
    for (const sub of this.subs.values()) {
      if (!this.mux.owns(sub) && wasConnected) writeUnsubTo(this.conn!.link, sub.sid, 0);
    }
    let failed: Error | null = null;
    if (wasConnected) {
      try {
        await this.flush();
      } catch (err) {
        // A flush that could not confirm what was published: the drain fails with it.
        if (err instanceof MessagesLostError || err instanceof TimeoutError) failed = err;
      }
    }
    for (const sub of this.subs.list()) if (!this.mux.owns(sub)) this.forget(sub);
    await this.close();
    if (failed !== null) throw failed;
  }

  /** Closes now: what is queued is still written out; pending requests fail. */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.state = State.CLOSED;
    this.clock.clear(this.reportTimer);
    this.reportTimer = null;
    this.reconnector.cancel();
    const err = new ConnectionError('connection closed');
    this.mux.close(err);
    this.keepalive.close(err);
    for (const sub of this.subs.list()) this.forget(sub);
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

  // --- what the broker sends ----------------------------------------------------------------

  /** @internal */
  onFrame(conn: Conn, buf: Buffer, off: number, len: number): void {
    const op = buf[off + 4]!;
    if (op === Op.MSG) {
      this.inbound.onMsg(buf, off, len);
      return;
    }
    switch (op) {
      case Op.PONG: {
        const w = this.keepalive.pong();
        if (w === null) return;
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
        writeBareTo(conn.link, Op.PONG);
        return;
      case Op.OK:
        return;
      case Op.LOSS:
        this.onLoss(buf, off);
        return;
      case Op.IMAGE: {
        const sub = this.subs.get(buf.readUInt32LE(off + 8));
        if (sub !== undefined) sub.onImage(buf[off + 5]!, buf.readUInt32LE(off + 12));
        return;
      }
      case Op.ERR:
        this.onErr(conn, buf, off, len);
        return;
      case Op.INFO:
        this.onInfo(conn, buf, off, len);
        return;
      case Op.CHALLENGE:
        this.onChallenge(conn, buf, off, len);
        return;
      case Op.DIRECT:
        if (this.direct !== null && this.conn === conn) this.direct.onControl(buf, off, len);
        else conn.link.destroy(new ConnectionError('protocol error: the server sent DIRECT on a connection without direct delivery'));
        return;
      default:
        conn.link.destroy(new ConnectionError(`protocol error: the server sent ${OP_NAMES[op]}, which servers never send`));
    }
  }

  /**
   * A subscription has had its `max` messages. The broker counts them too, but not
   * those delivered directly by other shm clients: then it is told.
   */
  private expired(sub: Subscription): void {
    this.forget(sub);
    if (this.direct !== null && this.connected && !this.conn!.link.closed) writeUnsubTo(this.conn!.link, sub.sid, 0);
  }

  /** DirectHost for the router: channel messages land where the broker's would. */
  private directHost(link: Link): DirectHost {
    return {
      link,
      onMsg: (buf, off, len) => this.inbound.onMsg(buf, off, len, true),
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
    const err = new ServerError(
      buf.readUInt16LE(off + 6),
      buf.toString('utf8', off + 12, off + len),
      (buf[off + 5]! & FLAG_FATAL) !== 0,
      buf.readUInt32LE(off + 8),
    );
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

  /** The broker asks for the nkey's signature of a nonce: answered with PROOF, the handshake still waiting for INFO. */
  private onChallenge(conn: Conn, buf: Buffer, off: number, len: number): void {
    const hs = this.handshake;
    if (hs === null || this.conn !== conn) {
      conn.link.destroy(new ConnectionError('protocol error: unexpected CHALLENGE after the handshake'));
      return;
    }
    const sign = this.options.sign;
    if (sign === null) {
      hs.reject(new ConnectionError('protocol error: the broker sent an nkey CHALLENGE, but this connection gave no nkey'));
      return;
    }
    // A copy: the read buffer is reused, and `sign` may take its time.
    const nonce = Uint8Array.from(buf.subarray(off + 8, off + len));
    const failed = (err: unknown) => {
      if (this.handshake === hs) hs.reject(new ConnectionError(`the connect option "sign" failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
    };
    let answer: Uint8Array | Promise<Uint8Array>;
    try {
      answer = sign(nonce);
    } catch (err) {
      failed(err);
      return;
    }
    void Promise.resolve(answer).then((sig) => {
      if (this.handshake !== hs || this.conn !== conn || conn.link.closed) return;
      if (!(sig instanceof Uint8Array) || sig.length !== SIGNATURE_BYTES) {
        failed(
          new TypeError(
            `it must return the ${SIGNATURE_BYTES}-byte Ed25519 signature of the nonce, got ${sig instanceof Uint8Array ? `${sig.length} bytes` : typeof sig}`,
          ),
        );
        return;
      }
      const f = encodeProof(sig);
      conn.link.send(f, 0, f.length);
    }, failed);
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
    const prev = this.info.previous;
    if (prev !== undefined && prev.closed === 'SLOW_CONSUMER') {
      const lost = Math.max(0, prev.msgsOut - this.prevReceived);
      this.notice = new SlowConsumerError(
        `the broker closed the previous connection as a slow consumer (${prev.reason}): ${lost} of the ${prev.msgsOut} messages queued for it did not arrive`,
        lost,
      );
    }
    this.resume = { serverId: this.info.serverId, clientId: this.info.clientId };
    if (Array.isArray(this.info.connectUrls)) this.servers.learn(this.info.connectUrls);
    // Made now: the broker's interest frames follow INFO in the same read.
    if (this.info.direct === true && conn.link.direct !== undefined) {
      this.direct = new DirectRouter(this.directHost(conn.link), conn.link.direct, this.info.clientId, this.info.serverId);
      for (const sub of this.subs.values()) this.direct.addOwn(sub.subject);
    }
    this.handshake.resolve();
  }

  /** Whether a lost link is followed by a reconnect. */
  private get willReconnect(): boolean {
    return this.state !== State.DRAINING && this.state !== State.CLOSED && this.options.reconnect && this.servers.redialable;
  }

  /** @internal The live link closes with frames it never wrote: its PUBs go to the backlog, as far as it holds them. */
  onLinkUnsent(conn: Conn, buf: Buffer, off: number, len: number): void {
    if (this.conn !== conn || this.handshake !== null || this.state === State.CLOSED) return;
    const { pubs, kept } = (this.willReconnect ? this.backlog : NO_BACKLOG).carry(buf, off, len);
    this.unsentPubs = pubs;
    this.carriedPubs = kept;
  }

  /** @internal */
  onLinkClose(conn: Conn, err: Error | null): void {
    if (this.conn !== conn) return;
    if (this.handshake !== null) {
      this.handshake.reject(err === null ? new ConnectionError('connection closed during the handshake') : explainHandshakeFailure(err, conn.ep.url));
      return;
    }
    this.conn = null;
    this.endDirect();
    if (this.state === State.CLOSED) return;
    this.lostAt = Date.now();
    this.lostServerId = this.info?.serverId ?? '';
    this.prevReceived = this.counters.msgsIn - this.msgsInAtAttach;
    const reconnecting = this.willReconnect;
    const total = this.published;
    const sentEnd = total - this.unsentPubs;
    const keptEnd = sentEnd + this.carriedPubs;
    this.unsentPubs = this.carriedPubs = 0;
    const dropped = reconnecting
      ? `the connection was lost, and the reconnect buffer (reconnectBufferBytes ${this.options.reconnectBufferBytes}) could not hold what it had not written yet`
      : 'the connection was lost before writing them, and it does not reconnect';
    this.published = this.keepalive.linkLost({ sentEnd, keptEnd, total, dropped });
    if (reconnecting && total > keptEnd) this.reportError(new MessagesLostError(total - keptEnd, dropped));
    this.emit('disconnect', err);
    if (!reconnecting) {
      void this.close();
      return;
    }
    this.state = State.RECONNECTING;
    void this.reconnector.run();
  }

  // --- connecting ------------------------------------------------------------------------

  /** Dials one server and runs the handshake; on success the link is live. */
  private async attach(ep: Endpoint): Promise<void> {
    const link = await dial(ep, {
      maxFrame: INITIAL_MAX_FRAME,
      timeoutMs: this.options.timeoutMs,
      transportOptions: { wait: this.options.wait, tls: this.options.tls },
    });
    if (this.state === State.CLOSED) {
      link.destroy();
      throw new ConnectionError('connection closed');
    }
    const conn = new Conn(this, link, ep);
    this.conn = conn;
    try {
      const hs = (this.handshake = new Handshake(this.clock, this.options.timeoutMs));
      try {
        link.start(conn);
        const hello = helloFrame(this.options, link, this.resume, ep);
        link.send(hello, 0, hello.length);
      } catch (e) {
        hs.reject(e as Error);
      }
      await hs.done;
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
    this.msgsInAtAttach = this.counters.msgsIn;
    // Re-establish everything the server forgot: subscriptions, then queued publishes, then flushes.
    for (const sub of this.subs.values()) writeSubTo(link, sub);
    if (this.backlog.used > 0) {
      const pending = this.backlog.take();
      link.send(pending, 0, pending.length);
    }
    this.keepalive.resend();
  }

  /** The keepalive's view of this bus. */
  private readonly pings = {
    bus: this as Bus,
    get connected(): boolean {
      return this.bus.connected;
    },
    sendPing(): void {
      writeBareTo(this.bus.conn!.link, Op.PING);
    },
    stale(err: Error): void {
      this.bus.conn!.link.destroy(err);
    },
    get published(): number {
      return this.bus.published;
    },
  };

  /** The reconnect loop's view of this bus. */
  private readonly redial = {
    bus: this as Bus,
    get reconnecting(): boolean {
      return this.bus.state === State.RECONNECTING;
    },
    attach: (ep: Endpoint): Promise<void> => this.attach(ep),
    reconnected: (ep: Endpoint): void => {
      this.counters.reconnects++;
      this.emit('reconnect', ep.url);
      const to = this.info?.serverId ?? '';
      const gap: GapEvent = {
        server: ep.url,
        fromServerId: this.lostServerId,
        toServerId: to,
        moved: to !== this.lostServerId,
        lostAt: this.lostAt,
        downMs: Math.max(0, Date.now() - this.lostAt),
        subscriptions: this.subs.size,
      };
      this.counters.gaps++;
      this.emit('gap', gap);
      const notice = this.notice;
      this.notice = null;
      if (notice !== null) this.reportError(notice);
    },
    gaveUp: (err: ConnectionError): void => {
      this.reportError(err);
      void this.close();
    },
  };
}

/**
 * Connects to a broker (or the first reachable of a list) and completes the
 * handshake. connect() calls it for every address but udp://; call it directly for
 * what only a broker connection has (info, options, stats() with latency figures).
 */
export async function connectBroker(servers: ServerAddress | ServerAddress[], options?: ConnectOptions): Promise<Bus> {
  const bus = new Bus(servers, options);
  await bus.open();
  return bus;
}
