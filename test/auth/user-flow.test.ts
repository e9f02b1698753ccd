/**
 * Per-user flow limits on real connections: `limits.publishRate` (a publish rate per
 * connection of the user, the stricter of it and the broker's `publishRate`, on the
 * broker's FakeClock) and `limits.maxPending` (the slow-consumer bound of the user's
 * connections, told in INFO), on the hopbus and the NATS listeners; and their validation.
 */
import { connect as natsConnect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { authOptionProblem } from '../../broker/auth/index.js';
import { startBroker, type BrokerOptions } from '../../broker/index.js';
import { connectBroker } from '../../client/index.js';
import { FakeClock } from '../../runtime/clock.js';
import { ERR, FLAG_FATAL, subFrame, until, useWorld } from '../kit/index.js';

const world = useWorld();

const RATED: BrokerOptions = {
  natsPort: 0,
  // The broker's own limit: 8 a second for everyone.
  publishRate: { msgsPerSec: 8, action: 'refuse' },
  users: [
    { user: 'slow', password: 's', limits: { publishRate: { msgsPerSec: 5, action: 'refuse' } } },
    // Asking for more than the broker allows gets the broker's.
    { user: 'greedy', password: 'g', limits: { publishRate: { msgsPerSec: 1000 } } },
    { user: 'free', password: 'f' },
  ],
};

describe('per-user publishRate', () => {
  it('holds each connection of the user to the stricter of its rate and the broker’s; other users keep the broker’s', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...RATED }, undefined, clock);
    try {
      const got = new Map<string, number>();
      const sub = world.track(await connectBroker(b.url, { user: 'free', pass: 'f', reconnect: false }));
      sub.subscribe('rate.*', (m) => got.set(m.subject, (got.get(m.subject) ?? 0) + 1));
      await sub.flush();
      for (const [user, pass] of [
        ['slow', 's'],
        ['greedy', 'g'],
        ['free', 'f'],
      ] as const) {
        const pub = world.track(await connectBroker(b.url, { user, pass, reconnect: false }));
        pub.on('error', () => {}); // RATE_LIMITED, not fatal
        for (let i = 0; i < 20; i++) pub.publish(`rate.${user}`, 'x');
        await pub.flush();
      }
      await sub.flush();
      expect(Object.fromEntries(got)).toEqual({ 'rate.slow': 5, 'rate.greedy': 8, 'rate.free': 8 });
      // A second later the bucket has refilled: the user's rate, not the broker's.
      clock.advance(1000);
      const again = world.track(await connectBroker(b.url, { user: 'slow', pass: 's', reconnect: false }));
      again.on('error', () => {});
      for (let i = 0; i < 20; i++) again.publish('rate.slow', 'x');
      await again.flush();
      await sub.flush();
      expect(got.get('rate.slow')).toBe(10);
    } finally {
      await b.close();
    }
  });

  it('applies on the NATS listener too', async () => {
    const clock = new FakeClock(1000);
    const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...RATED }, undefined, clock);
    try {
      let n = 0;
      const sub = world.track(await connectBroker(b.url, { user: 'free', pass: 'f', reconnect: false }));
      sub.subscribe('nats.slow', () => n++);
      await sub.flush();
      const nc = await natsConnect({ servers: `127.0.0.1:${b.broker.natsPort}`, user: 'slow', pass: 's', reconnect: false });
      try {
        for (let i = 0; i < 20; i++) nc.publish('nats.slow', 'x');
        await nc.flush();
      } finally {
        await nc.close();
      }
      await sub.flush();
      expect(n).toBe(5);
    } finally {
      await b.close();
    }
  });
});

describe('per-user maxPending', () => {
  it('cuts the user’s frozen consumer at its bound, told in INFO, while a frozen consumer with the default is not cut', async () => {
    const b = await world.broker({
      users: [
        { user: 'tiny', password: 't', limits: { maxPending: 64 * 1024 } },
        { user: 'big', password: 'b' },
      ],
    });
    const frozen = async (user: string, pass: string) => {
      const r = await world.raw(b);
      r.keepPayloads = false;
      const info = await r.handshake({ name: user, user, pass });
      r.send(subFrame(1, 'feed'));
      await r.roundTrip();
      r.socket.pause();
      return { r, info };
    };
    const tiny = await frozen('tiny', 't');
    const big = await frozen('big', 'b');
    expect(tiny.info.maxPending).toBe(64 * 1024);
    expect(big.info.maxPending).toBe(64 * 1024 * 1024);
    const pub = await world.connect(b.url, { user: 'big', pass: 'b' });
    const blob = new Uint8Array(4000);
    const batch = async () => {
      for (let i = 0; i < 8; i++) pub.publish('feed', blob);
      await pub.flush();
    };
    let batches = 0;
    while (b.broker.counters.slowConsumers === 0 && batches++ < 2000) await batch();
    expect(b.broker.counters.slowConsumers).toBe(1);
    const bigSession = () => [...b.broker.sessions].find((s) => s.name === 'big');
    // The one cut is tiny's; big's keeps queueing past tiny's bound.
    expect([...b.broker.sessions].some((s) => s.name === 'tiny' && s.open)).toBe(false);
    while ((bigSession()?.out.pendingBytes ?? 0) <= 128 * 1024 && batches++ < 4000) await batch();
    expect(bigSession()!.open).toBe(true);
    expect(bigSession()!.out.pendingBytes).toBeGreaterThan(128 * 1024);
    expect(b.broker.counters.slowConsumers).toBe(1);
    tiny.r.socket.resume();
    await tiny.r.closed;
    expect(tiny.r.errors().map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.SLOW_CONSUMER, FLAG_FATAL]]);
    expect(tiny.r.errors()[0]!.text).toMatch(/more than 65536 bytes pending/);
    big.r.socket.resume();
    await until(() => big.r.msgCount === batches * 8, 'big to read everything');
  });
});

describe('validation', () => {
  it('names a bad publishRate or maxPending in a user’s limits', () => {
    const users = (limits: unknown) => authOptionProblem('users', [{ user: 'u', password: 'p', limits }]);
    expect(users({ publishRate: { msgsPerSec: 10, action: 'refuse' }, maxPending: 1024 })).toBeNull();
    expect(users({ publishRate: { msgsPerSec: -1 } })).toMatch(/users\[0\]\.limits\.publishRate\.msgsPerSec must be a non-negative number/);
    expect(users({ publishRate: { rate: 1 } })).toMatch(/unknown key "rate" in users\[0\]\.limits\.publishRate/);
    expect(users({ publishRate: 5 })).toMatch(/users\[0\]\.limits\.publishRate must be an object/);
    expect(users({ maxPending: 0 })).toMatch(/users\[0\]\.limits\.maxPending must be a positive integer \(bytes\)/);
    expect(users({ maxPending: '1MB' })).toMatch(/maxPending must be a positive integer/);
    expect(authOptionProblem('tokens', [{ token: 't', limits: { maxPendng: 1 } }])).toMatch(/unknown key "maxPendng"; known: .*publishRate, maxPending/);
  });
});
