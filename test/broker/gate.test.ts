/** The publisher gate on a FakeClock: rate limits, block-policy pauses, paused time. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { newCounters } from '../../broker/counters.js';
import { PublisherGate } from '../../broker/gate.js';
import { Limiter } from '../../broker/ratelimit.js';

const ERR_RATE_LIMITED = 14;

function gate() {
  const clock = new FakeClock(1000);
  const counters = newCounters();
  const link = {
    reading: true,
    pauses: 0,
    pause() {
      this.reading = false;
      this.pauses++;
    },
    resume() {
      this.reading = true;
    },
  };
  const errors: string[] = [];
  const g = new PublisherGate({ link, error: (code, text) => errors.push(`${code} ${text}`) }, counters, clock);
  return { clock, counters, link, errors, g };
}

describe('PublisherGate: its own rate limit', () => {
  it('action refuse: messages over the burst are refused and counted, reported at most once a second', () => {
    const { clock, counters, errors, g } = gate();
    g.own = new Limiter({ msgsPerSec: 10, burstMsgs: 2, action: 'refuse' }, clock.now());
    expect([g.admit(10, []), g.admit(10, []), g.admit(10, []), g.admit(10, [])]).toEqual([true, true, false, false]);
    expect(g.flow.refused).toBe(2);
    expect(counters.rateRefused).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^${ERR_RATE_LIMITED} rate limit exceeded: 1 message`));
    clock.advance(999);
    // Refilled by ~10 tokens: admitted again; a later refusal within the second is not reported.
    expect(g.admit(10, [])).toBe(true);
    clock.advance(1);
    g.own = new Limiter({ msgsPerSec: 1, burstMsgs: 1, action: 'refuse' }, clock.now());
    g.admit(1, []);
    g.admit(1, []);
    expect(errors).toHaveLength(2);
  });

  it('action slow: a message into debt is admitted, reading pauses until the debt is repaid, and the pause is timed', () => {
    const { clock, counters, link, g } = gate();
    g.own = new Limiter({ msgsPerSec: 100, burstMsgs: 1 }, clock.now());
    expect(g.admit(1, [])).toBe(true);
    expect(link.reading).toBe(true);
    expect(g.admit(1, [])).toBe(true);
    expect([link.reading, g.paused, g.flow.throttled]).toEqual([false, true, 1]);
    // One message of debt at 100/s: 10 ms.
    clock.advance(9);
    expect(link.reading).toBe(false);
    clock.advance(1);
    expect([link.reading, g.paused]).toEqual([true, false]);
    expect(g.flow.pausedMs).toBe(10);
    expect(counters.pausedMs).toBe(10);
    expect(clock.pending).toBe(0);
  });

  it('a subject limit in debt throttles too, and the pause lasts until every limiter is repaid', () => {
    const { clock, link, g } = gate();
    const subject = new Limiter({ msgsPerSec: 50, burstMsgs: 1 }, clock.now());
    g.own = new Limiter({ msgsPerSec: 100, burstMsgs: 1 }, clock.now());
    g.admit(1, [subject]);
    g.admit(1, [subject]);
    expect(link.reading).toBe(false);
    clock.advance(10);
    // The own limit is repaid, the subject's (20 ms) not yet: the timer is re-armed.
    expect(link.reading).toBe(false);
    clock.advance(10);
    expect(link.reading).toBe(true);
    expect(g.flow.pausedMs).toBe(20);
  });
});

describe('PublisherGate: block policy', () => {
  it('pauses while any blocked consumer holds it, resumes when the last lets go', () => {
    const { clock, link, g } = gate();
    const c1 = {};
    const c2 = {};
    g.block(c1);
    g.block(c2);
    expect([link.reading, link.pauses]).toEqual([false, 1]);
    clock.advance(5);
    g.unblock(c1);
    expect(link.reading).toBe(false);
    // Unblocking by one that never blocked changes nothing.
    g.unblock({});
    clock.advance(5);
    g.unblock(c2);
    expect(link.reading).toBe(true);
    expect(g.flow.pausedMs).toBe(10);
  });

  it('a throttle and a blocker together: reading resumes only when both are gone', () => {
    const { clock, link, g } = gate();
    g.own = new Limiter({ msgsPerSec: 100, burstMsgs: 1 }, clock.now());
    const c = {};
    g.block(c);
    g.admit(1, []);
    g.admit(1, []);
    clock.advance(20);
    expect(link.reading).toBe(false);
    g.unblock(c);
    expect(link.reading).toBe(true);
    expect(link.pauses).toBe(1);
  });

  it('close leaves no timer behind and never resumes the link', () => {
    const { clock, link, g } = gate();
    g.own = new Limiter({ msgsPerSec: 1, burstMsgs: 1 }, clock.now());
    g.admit(1, []);
    g.admit(1, []);
    g.close();
    expect(clock.pending).toBe(0);
    clock.advance(5000);
    expect(link.reading).toBe(false);
    expect(g.paused).toBe(false);
  });
});
