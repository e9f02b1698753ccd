/**
 * The public types of a client connection: what `connect()` returns, whatever the URL
 * (a broker over tcp/unix/ws/shm/inproc: Bus; brokerless udp:// multicast:
 * MulticastBus). Code written against `Connection` moves between transports by
 * changing the URL. Types only: nothing here runs.
 */
import type { HopbusError } from '../runtime/errors.js';
import type { Msg } from './msg.js';
import type { MsgHandler, SubscribeOptions, Subscription } from './subscription.js';

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
  /** The broker serves snapshot subscriptions (docs/CACHE.md); absent from older brokers. */
  snapshots?: boolean;
  /** The broker has a journal and serves replay-then-live subscriptions (docs/JOURNAL.md). */
  replay?: boolean;
  /**
   * On a reconnect to the same broker: why it closed this client's previous connection,
   * and how many messages it had queued for it (the client subtracts what it received).
   */
  previous?: { closed: 'SLOW_CONSUMER'; reason: string; msgsOut: number };
  /** Other brokers of the same service (config `cluster.peers`): the client adds them to its reconnect list. */
  connectUrls?: string[];
}

/**
 * Emitted as 'gap' after every reconnect: while the link was down, what was published
 * to this client's subscriptions did not reach it (at most once across a failover). The
 * journal can fill it (docs/JOURNAL.md, docs/LEAFNODE.md#failover).
 */
export interface GapEvent {
  /** The server connected to now. */
  server: string;
  /** serverId of the broker before and after; different when the client moved to another broker. */
  fromServerId: string;
  toServerId: string;
  moved: boolean;
  /** Date.now() when the link was lost, and how long it was down (ms). */
  lostAt: number;
  downMs: number;
  /** Subscriptions re-established, each of which may have missed messages. */
  subscriptions: number;
}

/** Emitted as 'loss' when the broker reports messages a subscription lost to its slow-consumer policy. */
export interface LossEvent {
  subscription: Subscription;
  subject: string;
  dropped: number;
  conflated: number;
  policy: string;
}

/** The counters every connection keeps (bus.stats.msgsIn etc.). */
export interface ConnectionCounters {
  readonly msgsIn: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** The events of every connection and what their listeners receive. */
export interface ConnectionEvents {
  /** Every error event is a HopbusError: server errors, lost messages, slow consumers, HandlerError for a callback that threw. */
  error: [err: HopbusError];
  loss: [event: LossEvent];
  /** Bus only: the link was lost (err: why, or null/undefined after a clean close). */
  disconnect: [err: Error | null | undefined];
  /** Bus only: connected again, to this server. */
  reconnect: [server: string];
  /** Bus only: right after 'reconnect': what may have been missed while disconnected. */
  gap: [event: GapEvent];
  close: [];
}

/**
 * A connection to the bus: publish, subscribe, request, flush, drain, close. Used
 * from one thread. Bus and MulticastBus implement it; `connect()` returns it.
 */
export interface Connection {
  /**
   * Publishes `data` (Uint8Array: raw bytes; string: UTF-8; anything else: msgpack).
   * Throws SubjectError for an invalid subject and MaxPayloadError for a payload over
   * the limit; in both cases nothing is sent.
   */
  publish(subject: string, data?: unknown, options?: PublishOptions): void;
  /**
   * Subscribes to a subject pattern (`*` one token, `>` the rest). With a handler,
   * messages go to it; without, the subscription is an async iterable.
   */
  subscribe(pattern: string, handler?: MsgHandler | SubscribeOptions, options?: SubscribeOptions): Subscription;
  /** Sends a request and resolves with the first reply (TimeoutError after timeoutMs). */
  request(subject: string, data?: unknown, options?: RequestOptions): Promise<Msg>;
  /**
   * The newest message on `subject` in the broker's last-value cache, decoded, or
   * undefined when it keeps none (docs/CACHE.md). A multicast connection rejects.
   */
  last(subject: string, options?: RequestOptions): Promise<unknown>;
  /** Resolves once everything published before it has left (a broker: has been processed). */
  flush(timeoutMs?: number): Promise<void>;
  /** Stops every subscription, delivers what is on its way, then closes. */
  drain(): Promise<void>;
  /** Closes now; pending requests fail. */
  close(): Promise<void>;
  /** The server connected to ('' while disconnected), or the multicast URL. */
  readonly server: string;
  readonly connected: boolean;
  readonly isClosed: boolean;
  /** Bytes queued towards the broker and not yet handed to the operating system. */
  readonly pendingBytes: number;
  /** What the broker said in INFO; null before the handshake and without a broker. */
  readonly info: ServerInfo | null;
  readonly stats: ConnectionCounters;
  on<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): this;
  once<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): this;
  off<E extends keyof ConnectionEvents>(event: E, listener: (...args: ConnectionEvents[E]) => void): this;
  /** Events of one kind of connection (MulticastBus: 'source-new', 'source-gone', 'repair'). */
  on(event: string, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  once(event: string, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
}
