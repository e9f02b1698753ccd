/**
 * broker/gate.ts: the publisher gate of one connection. Two things stop the broker
 * from reading a publisher's link: its rate limits (its own and the subjects', which
 * throttle it) and consumers with the block policy that are behind (blockers, see
 * broker/policy.ts). Reading resumes when neither holds it. The time it spends
 * paused is counted here, per connection and broker-wide.
 *
 * The throttle timer runs on a Clock, so test/broker/gate.test.ts drives it with a
 * FakeClock.
 *
 * Threading: the broker's thread. Must not import sessions, the router or the broker:
 * it sees its connection through `GateOwner`.
 */
import { ErrCode } from '../transports/protocol/index.js';
import type { Clock, Timer } from '../runtime/clock.js';
import type { BrokerCounters } from './counters.js';
import type { Limiter } from './ratelimit.js';

/** What the gate needs of its connection. */
export interface GateOwner {
  readonly link: { pause(): void; resume(): void };
  /** A non-fatal error to the client (rate refusals are reported at most once a second). */
  error(code: number, text: string): void;
}

export interface FlowStats {
  /** Time this connection spent paused, ms. */
  pausedMs: number;
  /** Times a rate limit paused it. */
  throttled: number;
  /** Messages refused by a limit with action "refuse". */
  refused: number;
}

export class PublisherGate {
  /** This connection's own publish rate limit (config, lowered by the client's request), or null. */
  own: Limiter | null = null;
  readonly flow: FlowStats = { pausedMs: 0, throttled: 0, refused: 0 };
  /** Limiters (own or subject) this publisher is in debt with. */
  private readonly throttledBy: Limiter[] = [];
  private throttleTimer: Timer | null = null;
  private readonly blockers = new Set<object>();
  private pausedAt = 0;
  private lastRefusalReport = -Infinity;
  private closed = false;

  constructor(
    private readonly owner: GateOwner,
    private readonly counters: BrokerCounters,
    private readonly clock: Clock,
  ) {}

  /** Not being read right now (rate limit or a blocked consumer). */
  get paused(): boolean {
    return this.blockers.size > 0 || this.throttleTimer !== null;
  }

  /**
   * Rate control of this publisher, per message: its own limit and the subject's.
   * Returns false when the message is refused. A `slow` limit in debt stops reading
   * the link until the debt is repaid (TCP back-pressure reaches the publisher).
   * Called only when there is a limit (see Router.publish).
   */
  admit(len: number, limiters: readonly Limiter[]): boolean {
    const now = this.clock.now();
    const own = this.own;
    if (own !== null && !this.admitOne(own, len, now)) return false;
    for (let i = 0; i < limiters.length; i++) if (!this.admitOne(limiters[i]!, len, now)) return false;
    return true;
  }

  private admitOne(l: Limiter, len: number, now: number): boolean {
    if (l.admit(len, now)) return true;
    if (l.refuse) {
      this.flow.refused++;
      this.counters.rateRefused++;
      if (now - this.lastRefusalReport >= 1000) {
        this.lastRefusalReport = now;
        this.owner.error(ErrCode.RATE_LIMITED, `rate limit exceeded: ${this.flow.refused} message(s) refused so far on this connection`);
      }
      return false;
    }
    if (!this.throttledBy.includes(l)) this.throttledBy.push(l);
    this.throttle(l.waitMs(now));
    return true;
  }

  /** A consumer with the block policy is behind. */
  block(by: object): void {
    const wasPaused = this.paused;
    this.blockers.add(by);
    if (!wasPaused) this.pause();
  }

  /** That consumer has caught up (or gone). */
  unblock(by: object): void {
    if (!this.blockers.delete(by)) return;
    if (!this.paused) this.resume();
  }

  private throttle(ms: number): void {
    if (this.throttleTimer !== null) return;
    const wasPaused = this.paused;
    this.throttleTimer = this.clock.timeout(this.endThrottle, Math.max(1, ms));
    this.flow.throttled++;
    if (!wasPaused) this.pause();
  }

  private readonly endThrottle = (): void => {
    this.throttleTimer = null;
    const now = this.clock.now();
    let wait = 0;
    for (const l of this.throttledBy) wait = Math.max(wait, l.waitMs(now));
    if (wait > 0 && !this.closed) {
      this.throttleTimer = this.clock.timeout(this.endThrottle, Math.max(1, wait));
      return;
    }
    this.throttledBy.length = 0;
    if (!this.paused) this.resume();
  };

  private pause(): void {
    this.pausedAt = this.clock.now();
    this.owner.link.pause();
  }

  private resume(): void {
    const ms = this.clock.now() - this.pausedAt;
    this.flow.pausedMs += ms;
    this.counters.pausedMs += ms;
    if (!this.closed) this.owner.link.resume();
  }

  /** The connection is closing: no timer left behind, nobody holds it any more. */
  close(): void {
    this.closed = true;
    this.clock.clear(this.throttleTimer);
    this.throttleTimer = null;
    this.blockers.clear();
  }
}
