import { describe, expect, it } from 'vitest';
import { Limiter, describeLimit, rateLimitProblem } from '../../broker/ratelimit.js';

// Time is passed in (ms); these tests never read a clock.
describe('Limiter', () => {
  it('with no rates it admits everything and never asks to wait', () => {
    const l = new Limiter({}, 0);
    for (let i = 0; i < 1000; i++) expect(l.admit(1 << 20, 0)).toBe(true);
    expect(l.waitMs(0)).toBe(0);
    expect(l.nextAdmitMs(1 << 20, 0)).toBe(0);
    expect(l.msgs).toBeNull();
    expect(l.bytes).toBeNull();
  });

  it('the burst defaults to one second of the rate', () => {
    const l = new Limiter({ msgsPerSec: 5, bytesPerSec: 500 }, 0);
    expect(l.msgs!.burst).toBe(5);
    expect(l.bytes!.burst).toBe(500);
  });

  describe('slow (the default): always takes, into debt, and says when the caller must wait', () => {
    it('admits the burst, then reports debt, and waitMs is the time to repay it', () => {
      const l = new Limiter({ msgsPerSec: 10, burstMsgs: 2 }, 0);
      expect(l.admit(1, 0)).toBe(true);
      expect(l.admit(1, 0)).toBe(true);
      expect(l.admit(1, 0)).toBe(false); // taken anyway: one message of debt
      expect(l.waitMs(0)).toBe(100);
      expect(l.waitMs(100)).toBe(0);
    });

    it('a byte rate counts whole frames: one large message can put the bucket deep into debt', () => {
      const l = new Limiter({ bytesPerSec: 1000 }, 0);
      expect(l.admit(3000, 0)).toBe(false);
      expect(l.waitMs(0)).toBe(2000);
    });

    it('waits for the slower of its two buckets', () => {
      const l = new Limiter({ msgsPerSec: 1000, bytesPerSec: 100, burstMsgs: 1, burstBytes: 100 }, 0);
      l.admit(300, 0);
      expect(l.waitMs(0)).toBe(2000);
    });
  });

  describe('refuse: over the limit, takes nothing and says no', () => {
    it('refuses the message over the rate, admits again once the bucket refilled', () => {
      const l = new Limiter({ msgsPerSec: 10, burstMsgs: 1, action: 'refuse' }, 0);
      expect(l.refuse).toBe(true);
      expect(l.admit(10, 0)).toBe(true);
      expect(l.admit(10, 50)).toBe(false);
      expect(l.admit(10, 99)).toBe(false);
      expect(l.admit(10, 100)).toBe(true);
    });

    it('nextAdmitMs says when the next message of that size gets in', () => {
      const l = new Limiter({ bytesPerSec: 1000, burstBytes: 100, action: 'refuse' }, 0);
      expect(l.admit(100, 0)).toBe(true);
      expect(l.nextAdmitMs(50, 0)).toBe(50);
      expect(l.admit(50, 49)).toBe(false);
      expect(l.admit(50, 50)).toBe(true);
    });

    it('a message larger than the byte burst waits for a full bucket, not forever', () => {
      const l = new Limiter({ bytesPerSec: 1000, burstBytes: 100, action: 'refuse' }, 0);
      l.admit(100, 0);
      expect(l.nextAdmitMs(10_000, 0)).toBe(100);
    });
  });
});

describe('rate limit configuration', () => {
  it('describes a limit for logs and errors', () => {
    expect(describeLimit({ msgsPerSec: 10, bytesPerSec: 2048 })).toBe('10 msg/s, 2048 B/s');
    expect(describeLimit({})).toBe('unlimited');
  });

  it('names the problem of a bad limit, and accepts a good one', () => {
    expect(rateLimitProblem({ msgsPerSec: 10, action: 'refuse' }, 'publishRate')).toBeNull();
    expect(rateLimitProblem([], 'publishRate')).toBe('publishRate must be an object');
    expect(rateLimitProblem({ msgsPerSec: -1 }, 'publishRate')).toMatch(/publishRate\.msgsPerSec must be a non-negative number/);
    expect(rateLimitProblem({ action: 'drop' }, 'publishRate')).toMatch(/action must be "slow" or "refuse"/);
    expect(rateLimitProblem({ perSec: 1 }, 'publishRate')).toMatch(/unknown key "perSec"/);
  });
});
