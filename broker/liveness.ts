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
 *  - read deadlines: a connection that has begun a frame and not completed it within
 *    readDeadlineMs is closed (PROTOCOL), and the bytes of that frame are released: the
 *    link's `partialFrame` is watched on this clock, a few times per deadline.
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
  readonly link: { readonly writeBlockedSince: number; readonly partialFrame?: number };
  /** The partial frame last seen (Link.partialFrame) and clock.now() when it was first seen. */
  partialSeen: number;
  partialSeenAt: number;
  /** PINGs sent and not answered yet. */
  pingsOut: number;
  /** clock.now() when the oldest unanswered keepalive PING was sent; 0 when none is out. */
  pingSentAt: number;
  /** Round trip of the last keepalive PING/PONG in ms; -1 until one has been measured. */
  rttMs: number;
  sendBare(op: Op.PING | Op.PONG): void;
  fatal(code: number, text: string): void;
  /** What its handshake still waits for, named in the timeout's ERR (default "CONNECT"). */
  readonly awaiting?: string;
  hasPolicy(p: Policy): boolean;
  slowConsumer(reason: string): void;
}

export type LivenessOptions = Pick<ResolvedOptions, 'pingIntervalMs' | 'maxPingsOut' | 'writeDeadlineMs' | 'readDeadlineMs' | 'handshakeTimeoutMs'>;

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
  private readTimer: Timer | null = null;

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
    if (o.readDeadlineMs > 0) {
      this.readTimer = this.clock.interval(this.checkReadDeadlines, Math.max(10, Math.min(1000, o.readDeadlineMs / 4))).unref();
    }
  }

  stop(): void {
    this.clock.clear(this.pingTimer);
    this.clock.clear(this.deadlineTimer);
    this.clock.clear(this.readTimer);
    this.pingTimer = this.deadlineTimer = this.readTimer = null;
  }

  /** A new connection: closed unless it sends CONNECT in time. Clear the timer on CONNECT. */
  expectConnect(s: Live): Timer | null {
    const ms = this.o.handshakeTimeoutMs;
    if (ms <= 0) return null;
    return this.clock.timeout(() => s.fatal(ErrCode.PROTOCOL, `no ${s.awaiting ?? 'CONNECT'} within ${ms} ms of connecting`), ms).unref();
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

  /** A frame that stays partial (the same one) for readDeadlineMs closes its connection. */
  private readonly checkReadDeadlines = (): void => {
    const now = this.clock.now();
    const limit = this.o.readDeadlineMs;
    for (const s of this.sessions) {
      const p = s.link.partialFrame ?? 0;
      if (p === 0 || !s.open) {
        s.partialSeen = 0;
        continue;
      }
      if (p !== s.partialSeen) {
        s.partialSeen = p;
        s.partialSeenAt = now;
      } else if (now - s.partialSeenAt >= limit) {
        s.fatal(
          ErrCode.PROTOCOL,
          `a frame begun ${Math.round(now - s.partialSeenAt)} ms ago is still incomplete (readDeadlineMs ${limit}): its bytes are released`,
        );
      }
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
