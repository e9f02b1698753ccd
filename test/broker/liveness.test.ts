/** Keepalive, stale connections, write deadlines and the handshake timeout, on a FakeClock. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { Liveness, SLOW_NOTICES, type Live, type LivenessOptions } from '../../broker/liveness.js';

const PING = 0x30;
const ERR_PROTOCOL = 1;
const ERR_STALE = 10;
const DISCONNECT = 1;

class FakeLive implements Live {
  open = true;
  link = { writeBlockedSince: 0, partialFrame: 0 };
  partialSeen = 0;
  partialSeenAt = 0;
  pingsOut = 0;
  pingSentAt = 0;
  rttMs = -1;
  pings = 0;
  policies: number[] = [DISCONNECT];
  readonly closed: Array<[number, string]> = [];
  slow: string[] = [];
  sendBare(op: number): void {
    if (op === PING) this.pings++;
  }
  fatal(code: number, text: string): void {
    this.closed.push([code, text]);
    this.open = false;
  }
  hasPolicy(p: number): boolean {
    return this.policies.includes(p);
  }
  slowConsumer(reason: string): void {
    this.slow.push(reason);
    this.open = false;
  }
}

const OPTS: LivenessOptions = { pingIntervalMs: 100, maxPingsOut: 2, writeDeadlineMs: 0, readDeadlineMs: 0, handshakeTimeoutMs: 0 };

function live(o: Partial<LivenessOptions> = {}) {
  const clock = new FakeClock(1000);
  const sessions = new Set<FakeLive>();
  const l = new Liveness(sessions, { ...OPTS, ...o }, clock);
  return {
    clock,
    sessions,
    l,
    add: () => {
      const s = new FakeLive();
      sessions.add(s);
      return s;
    },
  };
}

describe('Liveness: keepalive', () => {
  it('a connection that never answers gets maxPingsOut PINGs, then is closed as stale', () => {
    const { clock, l, add } = live();
    const s = add();
    l.start();
    clock.advance(200);
    expect([s.pings, s.open]).toEqual([2, true]);
    clock.advance(100);
    expect(s.pings).toBe(2);
    expect(s.closed).toEqual([[ERR_STALE, 'stale connection: 2 PINGs unanswered']]);
  });

  it('a connection that answers every PING stays open over many intervals, and its round trip is measured', () => {
    const { clock, l, add } = live();
    const s = add();
    l.start();
    clock.advance(100);
    for (let i = 0; i < 10; i++) {
      // A PING at each interval, its PONG 3 ms later.
      clock.advance(3);
      l.pong(s);
      clock.advance(97);
    }
    expect(s.pings).toBe(11);
    expect(s.open).toBe(true);
    expect(s.rttMs).toBe(3);
    // Only the PING of the last interval is out.
    expect(s.pingsOut).toBe(1);
  });

  it('closing connections are not pinged', () => {
    const { clock, l, add } = live();
    const s = add();
    s.open = false;
    l.start();
    clock.advance(1000);
    expect(s.pings).toBe(0);
  });

  it('with pingIntervalMs 0 nothing is scheduled', () => {
    const { clock, l, add } = live({ pingIntervalMs: 0 });
    const s = add();
    l.start();
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(s.pings).toBe(0);
  });

  it('stop clears its timers', () => {
    const { clock, l } = live({ writeDeadlineMs: 1000, readDeadlineMs: 1000 });
    l.start();
    expect(clock.pending).toBe(3);
    l.stop();
    expect(clock.pending).toBe(0);
  });
});

describe('Liveness: write deadlines', () => {
  it('a connection whose write has been blocked past the deadline is a slow consumer (disconnect policy)', () => {
    const { clock, l, add } = live({ pingIntervalMs: 0, writeDeadlineMs: 400 });
    const s = add();
    l.start();
    s.link.writeBlockedSince = clock.now();
    clock.advance(300);
    expect(s.slow).toEqual([]);
    clock.advance(100);
    expect(s.slow).toEqual(['a write blocked for more than 400 ms']);
  });

  it('a connection whose subscriptions all chose a dropping policy is left to that policy', () => {
    const { clock, l, add } = live({ pingIntervalMs: 0, writeDeadlineMs: 400 });
    const s = add();
    s.policies = [2];
    l.start();
    s.link.writeBlockedSince = clock.now();
    clock.advance(10_000);
    expect(s.slow).toEqual([]);
  });

  it('a link that is not blocked is never a slow consumer', () => {
    const { clock, l, add } = live({ pingIntervalMs: 0, writeDeadlineMs: 400 });
    const s = add();
    l.start();
    clock.advance(10_000);
    expect(s.slow).toEqual([]);
  });
});

describe('Liveness: handshake timeout', () => {
  it('a connection without CONNECT is closed after handshakeTimeoutMs with PROTOCOL', () => {
    const { clock, l } = live({ handshakeTimeoutMs: 150 });
    const s = new FakeLive();
    l.expectConnect(s);
    clock.advance(149);
    expect(s.closed).toEqual([]);
    clock.advance(1);
    expect(s.closed).toEqual([[ERR_PROTOCOL, 'no CONNECT within 150 ms of connecting']]);
  });

  it('CONNECT in time clears the timer', () => {
    const { clock, l } = live({ handshakeTimeoutMs: 150 });
    const s = new FakeLive();
    const t = l.expectConnect(s);
    clock.advance(100);
    l.connected(t);
    clock.advance(1000);
    expect(s.closed).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('handshakeTimeoutMs 0: no timer', () => {
    const { clock, l } = live({ handshakeTimeoutMs: 0 });
    expect(l.expectConnect(new FakeLive())).toBe(null);
    expect(clock.pending).toBe(0);
  });
});

describe('Liveness: read deadlines', () => {
  it('the same partial frame seen for readDeadlineMs closes the connection; a new one each time, or none, does not', () => {
    const { clock, l, add } = live({ pingIntervalMs: 0, readDeadlineMs: 400 });
    const stuck = add();
    const moving = add();
    const idle = add();
    l.start();
    stuck.link.partialFrame = 7;
    for (let i = 1; i <= 8; i++) {
      moving.link.partialFrame = i; // frames that complete, each split across chunks
      clock.advance(100);
    }
    expect(stuck.closed).toHaveLength(1);
    expect(stuck.closed[0]![1]).toMatch(/a frame begun 400 ms ago is still incomplete \(readDeadlineMs 400\)/);
    expect(moving.closed).toEqual([]);
    expect(idle.closed).toEqual([]);
  });
});

describe('Liveness: slow-consumer notices', () => {
  it('a notice is given once, and at most SLOW_NOTICES are kept, the oldest forgotten first', () => {
    const { l } = live();
    for (let cid = 1; cid <= SLOW_NOTICES + 10; cid++) l.closedSlow(cid, { closed: 'SLOW_CONSUMER', reason: 'r', msgsOut: cid });
    expect(l.slowNotices).toBe(SLOW_NOTICES);
    expect(l.takeSlow(1)).toBeUndefined();
    expect(l.takeSlow(SLOW_NOTICES + 10)).toEqual({ closed: 'SLOW_CONSUMER', reason: 'r', msgsOut: SLOW_NOTICES + 10 });
    expect(l.takeSlow(SLOW_NOTICES + 10)).toBeUndefined();
  });
});
