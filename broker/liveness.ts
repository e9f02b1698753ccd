/**
 * broker/liveness.ts: is each connection alive and draining? Three clocks per
 * broker, all on one `Clock` so tests drive them with a FakeClock:
 *
 *  - the handshake timeout: a connection that sends no CONNECT within
 *    handshakeTimeoutMs is closed (one timer per connection, until CONNECT);
 *  - keepalive: every pingIntervalMs each open connection gets a PING; one with
 *    maxPingsOut PINGs unanswered is stale and closed. The PONG gives its round trip;
 *  - write deadlines: a connection whose link has accepted nothing for
 *    writeDeadlineMs is a slow consumer even below the byte bounds (checked a few
 *    times per deadline). Links stamp `writeBlockedSince` with performance.now(), the
 *    real clock's scale.
 *
 * And what a connection closed as a slow consumer is told when it comes back: its
 * client id, why, and how many messages had been queued for it (SlowNotices), so the
 * client can count what it lost. Bounded in entries, oldest forgotten first.
 *
 * Threading: the broker's thread. Must not import sessions or the broker: it sees
 * connections through `Live`.
 */
import { ErrCode, Op, Policy } from '../transports/protocol/index.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { ResolvedOptions } from './config.js';

/** What liveness needs of a connection. */
export interface Live {
  readonly open: boolean;
  readonly link: { readonly writeBlockedSince: number };
  /** PINGs sent and not answered yet. */
  pingsOut: number;
  /** clock.now() when the oldest unanswered keepalive PING was sent; 0 when none is out. */
  pingSentAt: number;
  /** Round trip of the last keepalive PING/PONG in ms; -1 until one has been measured. */
  rttMs: number;
  sendBare(op: Op.PING | Op.PONG): void;
  fatal(code: number, text: string): void;
  hasPolicy(p: Policy): boolean;
  slowConsumer(reason: string): void;
}

export type LivenessOptions = Pick<ResolvedOptions, 'pingIntervalMs' | 'maxPingsOut' | 'writeDeadlineMs' | 'handshakeTimeoutMs'>;

/** Why a connection was closed as a slow consumer, for its next connection's INFO (`previous`). */
export interface SlowNotice {
  closed: 'SLOW_CONSUMER';
  reason: string;
  /** Messages queued for the closed connection in all (the client subtracts what it received). */
  msgsOut: number;
}

/** Slow-consumer closures remembered for the clients that reconnect; the oldest go first. */
export const SLOW_NOTICES = 4096;

export class Liveness {
  /** Recent slow-consumer closures by client id, in insertion order. */
  private readonly slow = new Map<number, SlowNotice>();
  private pingTimer: Timer | null = null;
  private deadlineTimer: Timer | null = null;

  constructor(
    private readonly sessions: Iterable<Live>,
    private readonly o: LivenessOptions,
    readonly clock: Clock,
  ) {}

  /** Starts keepalive and write-deadline checks (the broker is listening). */
  start(): void {
    const o = this.o;
    if (o.pingIntervalMs > 0) this.pingTimer = this.clock.interval(this.keepalive, o.pingIntervalMs).unref();
    if (o.writeDeadlineMs > 0) {
      this.deadlineTimer = this.clock.interval(this.checkWriteDeadlines, Math.max(10, Math.min(1000, o.writeDeadlineMs / 4))).unref();
    }
  }

  stop(): void {
    this.clock.clear(this.pingTimer);
    this.clock.clear(this.deadlineTimer);
    this.pingTimer = this.deadlineTimer = null;
  }

  /** A new connection: closed unless it sends CONNECT in time. Clear the timer on CONNECT. */
  expectConnect(s: Live): Timer | null {
    const ms = this.o.handshakeTimeoutMs;
    if (ms <= 0) return null;
    return this.clock.timeout(() => s.fatal(ErrCode.PROTOCOL, `no CONNECT within ${ms} ms of connecting`), ms).unref();
  }

  connected(t: Timer | null): void {
    this.clock.clear(t);
  }

  /** Connection `cid` was closed as a slow consumer: remembered for when it comes back. */
  closedSlow(cid: number, notice: SlowNotice): void {
    if (this.slow.size >= SLOW_NOTICES) this.slow.delete(this.slow.keys().next().value!);
    this.slow.set(cid, notice);
  }

  /** The notice for a client that was connection `cid` before, once; undefined if none. */
  takeSlow(cid: number): SlowNotice | undefined {
    const n = this.slow.get(cid);
    if (n !== undefined) this.slow.delete(cid);
    return n;
  }

  /** How many closures are remembered (bounded by SLOW_NOTICES). */
  get slowNotices(): number {
    return this.slow.size;
  }

  /** A PONG arrived: the connection is alive, and the round trip is measured. */
  pong(s: Live): void {
    s.pingsOut = 0;
    if (s.pingSentAt > 0) {
      s.rttMs = this.clock.now() - s.pingSentAt;
      s.pingSentAt = 0;
    }
  }

  private readonly keepalive = (): void => {
    const max = this.o.maxPingsOut;
    for (const s of this.sessions) {
      if (!s.open) continue;
      if (s.pingsOut >= max) {
        s.fatal(ErrCode.STALE_CONNECTION, `stale connection: ${s.pingsOut} PINGs unanswered`);
        continue;
      }
      s.pingsOut++;
      if (s.pingSentAt === 0) s.pingSentAt = this.clock.now();
      s.sendBare(Op.PING);
    }
  };

  /** Sessions whose subscriptions all chose a dropping policy are left to that policy. */
  private readonly checkWriteDeadlines = (): void => {
    const now = this.clock.now();
    const limit = this.o.writeDeadlineMs;
    for (const s of this.sessions) {
      const since = s.link.writeBlockedSince;
      if (since === 0 || now - since < limit || !s.open) continue;
      if (s.hasPolicy(Policy.DISCONNECT)) s.slowConsumer(`a write blocked for more than ${limit} ms`);
    }
  };
}
