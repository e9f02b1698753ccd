/**
 * Rate limits as the broker configures them: a RateLimit (publish or delivery, per
 * connection or per subject pattern) enforced by a Limiter, a pair of token buckets
 * (runtime/bucket.ts) in messages and bytes. Time comes from the caller, so one clock
 * read serves every limiter a message touches.
 */
import { TokenBucket } from '../runtime/bucket.js';

/** A message-rate and byte-rate limit, as configured. */
export interface RateLimit {
  /** Messages per second; 0 = unlimited. */
  msgsPerSec?: number;
  /** Bytes per second (whole frames); 0 = unlimited. */
  bytesPerSec?: number;
  /** Messages allowed in a burst above the rate (default: one second's worth). */
  burstMsgs?: number;
  /** Bytes allowed in a burst (default: one second's worth). */
  burstBytes?: number;
  /** Over the limit: `slow` stops reading the publisher until it is back in budget (TCP back-pressure reaches it); `refuse` drops the message and counts it (default slow). */
  action?: 'slow' | 'refuse';
}

/** A pair of buckets (messages, bytes) enforcing one RateLimit. */
export class Limiter {
  readonly msgs: TokenBucket | null;
  readonly bytes: TokenBucket | null;
  readonly refuse: boolean;

  constructor(limit: RateLimit, now: number) {
    const m = limit.msgsPerSec ?? 0;
    const b = limit.bytesPerSec ?? 0;
    this.msgs = m > 0 ? new TokenBucket(m, limit.burstMsgs ?? m, now) : null;
    this.bytes = b > 0 ? new TokenBucket(b, limit.burstBytes ?? b, now) : null;
    this.refuse = limit.action === 'refuse';
  }

  /**
   * Accounts one message of `len` bytes. For `refuse`, returns false and takes nothing
   * when over the limit. For `slow`, always takes (into debt) and returns whether the
   * caller must now wait (see waitMs).
   */
  admit(len: number, now: number): boolean {
    if (this.refuse) {
      if (this.msgs !== null && !this.msgs.tryTake(1, now)) return false;
      if (this.bytes !== null && !this.bytes.tryTake(len, now)) return false;
      return true;
    }
    let debt = false;
    if (this.msgs !== null && this.msgs.take(1, now)) debt = true;
    if (this.bytes !== null && this.bytes.take(len, now)) debt = true;
    return !debt;
  }

  waitMs(now: number): number {
    return Math.max(this.msgs?.waitMs(now) ?? 0, this.bytes?.waitMs(now) ?? 0);
  }

  /** Milliseconds until a message of `len` bytes would be admitted (refuse-style limiters). */
  nextAdmitMs(len: number, now: number): number {
    return Math.max(this.msgs?.timeUntil(1, now) ?? 0, this.bytes?.timeUntil(Math.min(len, this.bytes.burst), now) ?? 0);
  }
}

/**
 * The stricter of two limits, field by field (0 or absent = unlimited); a burst left
 * out counts as its rate's default (one second's worth), so a strict rate does not take
 * the other's larger burst. `action` is `first`'s, else `second`'s.
 */
export function stricterLimit(first: RateLimit, second: RateLimit): RateLimit {
  const min = (a: number | undefined, b: number | undefined) => (!a ? b : !b ? a : Math.min(a, b));
  const burst = (l: RateLimit, k: 'burstMsgs' | 'burstBytes', rate: 'msgsPerSec' | 'bytesPerSec') => l[k] ?? l[rate];
  const out: RateLimit = {};
  const put = (k: keyof Omit<RateLimit, 'action'>, v: number | undefined) => {
    if (v) out[k] = v;
  };
  put('msgsPerSec', min(first.msgsPerSec, second.msgsPerSec));
  put('bytesPerSec', min(first.bytesPerSec, second.bytesPerSec));
  put('burstMsgs', min(burst(first, 'burstMsgs', 'msgsPerSec'), burst(second, 'burstMsgs', 'msgsPerSec')));
  put('burstBytes', min(burst(first, 'burstBytes', 'bytesPerSec'), burst(second, 'burstBytes', 'bytesPerSec')));
  const action = first.action ?? second.action;
  if (action !== undefined) out.action = action;
  return out;
}

export function describeLimit(l: RateLimit): string {
  const parts: string[] = [];
  if (l.msgsPerSec) parts.push(`${l.msgsPerSec} msg/s`);
  if (l.bytesPerSec) parts.push(`${l.bytesPerSec} B/s`);
  return parts.join(', ') || 'unlimited';
}

/** Validates a RateLimit from config or a client; returns the problem or null. */
export function rateLimitProblem(l: unknown, where: string): string | null {
  if (l === null || typeof l !== 'object' || Array.isArray(l)) return `${where} must be an object`;
  for (const [k, v] of Object.entries(l)) {
    if (k === 'action') {
      if (v !== 'slow' && v !== 'refuse') return `${where}.action must be "slow" or "refuse", got ${JSON.stringify(v)}`;
    } else if (['msgsPerSec', 'bytesPerSec', 'burstMsgs', 'burstBytes'].includes(k)) {
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) return `${where}.${k} must be a non-negative number, got ${JSON.stringify(v)}`;
    } else {
      return `unknown key "${k}" in ${where}; known: msgsPerSec, bytesPerSec, burstMsgs, burstBytes, action`;
    }
  }
  return null;
}
