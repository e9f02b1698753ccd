import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../runtime/bucket.js';

// Time is passed in (ms); these tests never read a clock.
describe('TokenBucket', () => {
  it('starts full: a burst of `burst` tokens is taken at once, then nothing', () => {
    const b = new TokenBucket(10, 3, 1000);
    expect([b.tryTake(1, 1000), b.tryTake(1, 1000), b.tryTake(1, 1000)]).toEqual([true, true, true]);
    expect(b.tryTake(1, 1000)).toBe(false);
  });

  it('refills at `rate` tokens per second', () => {
    const b = new TokenBucket(10, 1, 0);
    expect(b.tryTake(1, 0)).toBe(true);
    expect(b.tryTake(1, 99)).toBe(false);
    expect(b.tryTake(1, 100)).toBe(true);
  });

  it('never holds more than `burst`, however long it waited', () => {
    const b = new TokenBucket(1000, 5, 0);
    for (let i = 0; i < 5; i++) expect(b.tryTake(1, 60_000)).toBe(true);
    expect(b.tryTake(1, 60_000)).toBe(false);
  });

  it('tryTake of more than it holds takes nothing', () => {
    const b = new TokenBucket(10, 5, 0);
    expect(b.tryTake(6, 0)).toBe(false);
    expect(b.tryTake(5, 0)).toBe(true);
  });

  it('take goes into debt and says so; waitMs is the time to repay it', () => {
    const b = new TokenBucket(1000, 100, 0);
    expect(b.take(100, 0)).toBe(false); // exactly empty: not in debt
    expect(b.waitMs(0)).toBe(0);
    expect(b.take(50, 0)).toBe(true);
    expect(b.waitMs(0)).toBe(50);
    expect(b.waitMs(20)).toBe(30);
    expect(b.waitMs(50)).toBe(0);
  });

  it('timeUntil is the time until n tokens are there, 0 when they are', () => {
    const b = new TokenBucket(10, 2, 0);
    b.tryTake(2, 0);
    expect(b.timeUntil(1, 0)).toBe(100);
    expect(b.timeUntil(2, 0)).toBe(200);
    expect(b.timeUntil(1, 100)).toBe(0);
  });

  it('time that goes backwards refills nothing and takes nothing back', () => {
    const b = new TokenBucket(10, 1, 1000);
    b.tryTake(1, 1000);
    expect(b.tryTake(1, 500)).toBe(false);
    expect(b.timeUntil(1, 1000)).toBe(100);
  });
});
