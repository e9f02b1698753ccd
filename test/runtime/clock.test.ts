import { describe, expect, it } from 'vitest';
import { FakeClock, realClock } from '../../runtime/clock.js';

describe('FakeClock', () => {
  it('runs a timeout once, when time reaches it, with now() at its due time', () => {
    const c = new FakeClock(0);
    const seen: number[] = [];
    c.timeout(() => seen.push(c.now()), 50);
    c.advance(49);
    expect(seen).toEqual([]);
    c.advance(1);
    expect(seen).toEqual([50]);
    c.advance(1000);
    expect(seen).toEqual([50]);
    expect(c.pending).toBe(0);
  });

  it('runs an interval at every period in one long advance, and not after clear()', () => {
    const c = new FakeClock(0);
    const seen: number[] = [];
    const t = c.interval(() => seen.push(c.now()), 30);
    c.advance(100);
    expect(seen).toEqual([30, 60, 90]);
    expect(c.now()).toBe(100);
    c.clear(t);
    c.advance(100);
    expect(seen).toEqual([30, 60, 90]);
  });

  it('orders timers by due time, then by creation, including timers made while running', () => {
    const c = new FakeClock(0);
    const seen: string[] = [];
    c.timeout(() => seen.push('b'), 20);
    c.timeout(() => {
      seen.push('a');
      c.timeout(() => seen.push('c'), 5);
    }, 10);
    c.timeout(() => seen.push('b2'), 20);
    c.advance(20);
    expect(seen).toEqual(['a', 'c', 'b', 'b2']);
  });

  it('a timer cleared by an earlier one in the same advance does not run', () => {
    const c = new FakeClock(0);
    const seen: string[] = [];
    const late = c.timeout(() => seen.push('late'), 20);
    c.timeout(() => c.clear(late), 10);
    c.advance(30);
    expect(seen).toEqual([]);
  });
});

describe('realClock', () => {
  it('fires a timeout and reads performance.now()', async () => {
    const before = realClock.now();
    await new Promise<void>((resolve) => realClock.timeout(resolve, 0));
    expect(realClock.now()).toBeGreaterThanOrEqual(before);
  });
});
