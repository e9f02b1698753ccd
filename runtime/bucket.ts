/**
 * runtime/bucket.ts: the one token bucket of hopbus, for every rate limit: the
 * broker's publish and delivery limits (broker/ratelimit.ts Limiter) and a multicast
 * subscription's delivery rate (client/inbox.ts MsgRate).
 *
 * A bucket holds up to `burst` tokens and refills at `rate` tokens per second; taking
 * more than it holds drives it into debt, which the holder repays by waiting
 * (`waitMs`). Time (ms, monotonic) always comes from the caller: one clock read serves
 * every bucket a message touches, and a test drives the bucket with plain numbers.
 * Time that goes backwards refills nothing.
 *
 * Threading: one thread, the owner's. Allocates nothing.
 * Imports nothing: runtime/ is below every other folder.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    /** Tokens per second. */
    readonly rate: number,
    /** Most tokens held (the burst allowed above the rate); the bucket starts full. */
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    const dt = now - this.last;
    if (dt > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (dt * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Takes n tokens if available; returns false (taking nothing) if not. */
  tryTake(n: number, now: number): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Takes n tokens even into debt; returns true if the bucket is now in debt. */
  take(n: number, now: number): boolean {
    this.refill(now);
    this.tokens -= n;
    return this.tokens < 0;
  }

  /** Milliseconds until n tokens are available. */
  timeUntil(n: number, now: number): number {
    this.refill(now);
    return this.tokens >= n ? 0 : ((n - this.tokens) * 1000) / this.rate;
  }

  /** Milliseconds until the bucket is out of debt (0 if it is not in debt). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.rate;
  }
}
