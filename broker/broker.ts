/**
 * broker/broker.ts: the broker's lifecycle. It makes the parts and wires them
 * together (router, liveness, monitor, direct plane, multicast bridge), starts the
 * listeners, adopts every link as a Session (`accept`), hands out listener-less
 * endpoints (shm, inproc) and shuts down gracefully. Nothing here is per message:
 * the hot path is broker/router.ts.
 *
 * The top of the broker/ import graph: nothing in broker/ imports this file but index.ts.
 */
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { ErrCode, type Policy, encodeErr, maxFrameFor } from '../transports/protocol/index.js';
import { realClock, type Clock } from '../runtime/clock.js';
import type { Link, Listener } from '../transports/link.js';
import { listenStream } from '../transports/stream.js';
import { listenTls, tlsReason } from '../transports/tls.js';
import { ShmHub, type ShmEndpoint, type ShmEndpointOptions } from '../transports/shm/hub.js';
import { listenInproc, type InprocEndpoint } from '../transports/inproc.js';
import { parseUrl } from '../transports/url.js';
import { VERSION } from '../transports/protocol/version.js';
import { resolveOptions, type BrokerOptions, type ResolvedOptions } from './config.js';
import { newCounters, type BrokerCounters } from './counters.js';
import { DirectPlane } from './direct.js';
import { serverInfo } from './handshake.js';
import type { SessionHost } from './host.js';
import { listenHttp } from './http.js';
import { Liveness } from './liveness.js';
import { Monitor } from './monitor.js';
import { MulticastBridge } from './bridge.js';
import { parsePolicy } from './policy.js';
import { Limiter } from './ratelimit.js';
import { Router } from './router.js';
import { Recorder } from './recorder.js';
import { Session } from './session.js';
import { LastValueCache } from './cache/cache.js';
import { ERR_MAX_CONNECTIONS } from './nats/errors.js';
import { listenNats } from './nats/listener.js';
import { NatsSession } from './nats/session.js';
import { Leafnodes } from './leaf/index.js';

export { VERSION } from '../transports/protocol/version.js';
export type { BrokerCounters } from './counters.js';

/**
 * The broker: accepts links from every listener, keeps one Session per link, and
 * routes each PUB to the sessions whose subscriptions match. Single-threaded: all of
 * it runs on the thread that started it.
 */
export class Broker implements SessionHost {
  readonly options: ResolvedOptions;
  readonly log: Logger;
  readonly serverId = randomBytes(8).toString('hex');
  readonly startedAt = Date.now();
  readonly counters: BrokerCounters = newCounters();
  /** Policy of subscriptions that name none (config slowConsumerPolicy). */
  readonly defaultPolicy: Policy;
  /** Routing: subscriptions, and every message's way to its subscribers. */
  readonly router: Router;
  /** Keepalive, write deadlines, handshake timeouts. */
  readonly liveness: Liveness;
  readonly sessions = new Set<Session>();
  /** NATS client connections (broker/nats/session.ts), on the same router. */
  readonly natsSessions = new Set<NatsSession>();
  readonly listeners: Listener[] = [];
  /** The NATS listener (option `natsPort`), once listening; kept out of `listeners` and `urls`, which hopbus clients dial. */
  private natsListener: (Listener & { readonly port: number }) | null = null;
  private nextId = 1;
  private closing: Promise<void> | null = null;
  /** Largest frame this broker accepts (and the bridge reassembles). */
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
  /** Recording into the journal (option `journal`), once listen() has opened it; else null. */
  recorder: Recorder | null = null;
  /** The last-value cache (option `cache`, broker/cache/); empty without one. */
  readonly cache: LastValueCache;
  /** The leafnode uplinks (option `leafnodes`, broker/leaf/), or null. */
  readonly leafnodes: Leafnodes | null = null;

  constructor(
    options: BrokerOptions = {},
    logger?: Logger,
    /** Time and timers of liveness and publisher gates (a FakeClock in tests). */
    readonly clock: Clock = realClock,
  ) {
    this.options = resolveOptions(options);
    this.maxFrame = maxFrameFor(this.options);
    this.log = logger ?? pino({ name: this.options.name, level: this.options.logLevel }, pino.destination({ fd: this.options.logDestination, sync: true }));
    this.defaultPolicy = parsePolicy(this.options.slowConsumerPolicy)!;
    for (const what of this.options.auth.plainSecrets)
      this.log.warn({ secret: what }, 'plain-text secret in the config: store its scrypt hash instead (hopbus passwd)');
    if (this.options.monitoring?.plainToken)
      this.log.warn({ secret: 'monitoring.token' }, 'plain-text secret in the config: store its scrypt hash instead (hopbus passwd)');
    const o = this.options;
    const now = clock.now();
    const subjectLimits = o.subjectRates.map(({ pattern, ...limit }) => ({ pattern, limiter: new Limiter(limit, now) }));
    this.router = new Router({ ...o, defaultPolicy: this.defaultPolicy, subjectLimits }, this.counters);
    this.cache = new LastValueCache(o.cache, clock);
    this.router.cache = this.cache;
    const sessions = this.sessions;
    const nats = this.natsSessions;
    // Keepalive and write deadlines see both kinds of connection.
    this.liveness = new Liveness(
      {
        *[Symbol.iterator]() {
          yield* sessions;
          yield* nats;
        },
      },
      o,
      clock,
    );
    this.monitor = new Monitor(this);
    this.router.tap = this.monitor;
    if (o.leafnodes) this.router.interest = this.leafnodes = new Leafnodes(this, o.leafnodes);
  }

  /** The URL clients dial for the first listener (TCP if any). */
  get url(): string {
    return this.listeners[0]?.url ?? '';
  }

  get urls(): string[] {
    return this.listeners.map((l) => l.url);
  }

  /** nats://host:port of the NATS listener, or null when there is none. */
  get natsUrl(): string | null {
    return this.natsListener?.url ?? null;
  }

  /** The NATS listener's port (the bound one when natsPort was 0), or null. */
  get natsPort(): number | null {
    return this.natsListener?.port ?? null;
  }

  async listen(): Promise<void> {
    const o = this.options;
    try {
      // The journal first: a directory that cannot be used stops the broker before it serves anyone.
      if (o.journal) this.router.recorder = this.recorder = await Recorder.open(o.journal, this.log);
      if (o.port !== null) {
        const where = `${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
        if (o.tls !== null) {
          const refusal = encodeErr(ErrCode.PROTOCOL, `this port takes TLS connections only: connect to tls://${where.replace(/:0$/, ':<port>')}`, 0, true);
          this.listeners.push(
            await listenTls(parseUrl(`tls://${where}`), this.maxFrame, this.accept, o.tls.serverSettings(o.handshakeTimeoutMs, refusal, this.tlsFailed)),
          );
        } else this.listeners.push(await listenStream(parseUrl(`tcp://${where}`), this.maxFrame, this.accept));
      }
      if (o.unix) this.listeners.push(await listenStream(parseUrl(`unix://${o.unix}`), this.maxFrame, this.accept));
      if (o.multicast) this.router.exporter = this.bridge = await MulticastBridge.start(this, o.multicast);
      if (o.httpPort !== null) this.listeners.push(await listenHttp(this, o.host, o.httpPort));
      if (o.natsPort !== null) {
        const refusal = Buffer.from("-ERR 'Secure Connection - TLS Required'\r\n", 'latin1');
        const tls = o.tls === null ? null : o.tls.serverSettings(o.handshakeTimeoutMs, refusal, this.tlsFailed);
        this.natsListener = await listenNats(o.natsHost ?? o.host, o.natsPort, this.acceptNats, tls);
      }
    } catch (err) {
      await Promise.all(this.listeners.map((l) => l.close()));
      this.listeners.length = 0;
      await this.natsListener?.close();
      this.natsListener = null;
      this.router.recorder = null;
      await this.recorder?.close();
      this.recorder = null;
      throw err;
    }
    this.liveness.start();
    this.monitor.start();
    this.cache.start();
    this.leafnodes?.start();
    const { logDestination: _d, ...shown } = o;
    this.log.info({ config: shown, urls: this.urls, natsUrl: this.natsUrl, serverId: this.serverId, version: VERSION }, 'broker started');
  }

  /** A TLS listener's connection failed before it became a session: counted and logged (a handshake is once per connection). */
  private readonly tlsFailed = (remote: string, err: Error): void => {
    this.counters.tlsFailures++;
    this.log.warn({ remote, reason: tlsReason(err) }, 'TLS connection refused');
  };

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

  /** Adopts a NATS client's connection (broker/nats/session.ts): INFO first, then its CONNECT. */
  readonly acceptNats = (link: Link): void => {
    if (this.closing) {
      link.destroy();
      return;
    }
    this.counters.connectionsTotal++;
    const session = new NatsSession(this.nextId++, link, this);
    link.start(session);
    if (this.sessions.size + this.natsSessions.size >= this.options.maxConnections) {
      // nats-server sends the -ERR in place of INFO.
      session.refuse(ERR_MAX_CONNECTIONS, `maximum connections reached (${this.options.maxConnections})`);
      return;
    }
    this.natsSessions.add(session);
    session.greet(this.options.natsHost ?? this.options.host, this.natsListener?.port ?? 0);
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

  /** DirectHost: what the broker must see of every publisher (the cache's and the journal's subjects). */
  mustSee(): readonly string[] {
    return [...this.cache.stores.map((s) => s.pattern), ...(this.options.journal?.subjects ?? [])];
  }

  /** SessionHost: a session's link is closed for good. */
  detach(session: Session | NatsSession): void {
    if (session instanceof NatsSession) this.natsSessions.delete(session);
    else this.sessions.delete(session);
  }

  /** What INFO tells client `clientId` (broker/handshake.ts). */
  info(clientId: number, direct = false): Record<string, unknown> {
    return serverInfo(this.options, this.serverId, clientId, direct);
  }

  /** The subject tree (for monitoring and tests): the router's. */
  get tree(): Router['tree'] {
    return this.router.tree;
  }

  /** Counters and per-connection flow state, for monitoring. */
  metrics(): {
    counters: BrokerCounters;
    connections: ReturnType<Session['metrics']>[];
    nats: ReturnType<NatsSession['metrics']>[];
    leafnodes: ReturnType<Leafnodes['metrics']>;
  } {
    return {
      counters: { ...this.counters },
      connections: [...this.sessions].map((s) => s.metrics()),
      nats: [...this.natsSessions].map((s) => s.metrics()),
      leafnodes: this.leafnodes?.metrics() ?? [],
    };
  }

  /**
   * Graceful shutdown: stop accepting, flush what is pending to every client, close.
   * Resolves when every connection has closed (forced after `graceMs`).
   */
  close(graceMs = 2000): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.liveness.stop();
      this.monitor.stop();
      this.cache.stop();
      // server.close() stops accepting at once but settles only when its
      // connections are gone, so it is awaited after the sessions are closed.
      const stopped = Promise.all([...this.listeners, ...(this.natsListener ? [this.natsListener] : [])].map((l) => l.close()));
      this.shm?.close();
      this.inproc?.close();
      this.direct.close();
      const bridgeClosed = this.bridge?.close();
      const leafClosed = this.leafnodes?.close(graceMs);
      const sessions: Array<Session | NatsSession> = [...this.sessions, ...this.natsSessions];
      for (const s of sessions) s.shutdown();
      const force = setTimeout(() => {
        for (const s of sessions) s.link.destroy();
      }, graceMs);
      await Promise.all(sessions.map((s) => s.done));
      clearTimeout(force);
      await stopped;
      await bridgeClosed;
      await leafClosed;
      // Last: every message the sessions delivered before closing has been recorded.
      this.router.recorder = null;
      await this.recorder?.close();
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

/**
 * Starts an embedded broker; `port: 0` picks a free port (read it back from `url`).
 * `clock` drives keepalive, write deadlines and rate-limit pauses (tests pass a FakeClock).
 */
export async function startBroker(options: BrokerOptions = {}, logger?: Logger, clock: Clock = realClock): Promise<StartedBroker> {
  const broker = new Broker(options, logger, clock);
  await broker.listen();
  return {
    url: broker.url,
    urls: broker.urls,
    broker,
    endpoint: broker.endpoint.bind(broker) as Broker['endpoint'],
    close: () => broker.close(),
  };
}
