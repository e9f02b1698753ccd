/**
 * waitOnFirstConnect: a service started before its broker keeps trying, with the
 * reconnect delays, and connect() resolves once the broker is there; without it, or past
 * maxReconnectAttempts, connect() rejects saying so.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionError, connect } from '../../client/index.js';
import { Bus } from '../../client/bus.js';
import { FakeClock } from '../../runtime/clock.js';
import { until, useWorld } from '../kit/index.js';

const w = useWorld();

/** A port with a listener that takes connections and drops them at once (a broker not up yet). */
async function notYet(): Promise<{ port: number; attempts: () => number; stop: () => Promise<void> }> {
  let attempts = 0;
  const server = net.createServer((s) => {
    attempts++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    attempts: () => attempts,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}

describe('waitOnFirstConnect', () => {
  it('keeps trying until the broker is up, then connects', async () => {
    const early = await notYet();
    // The delays between attempts run on a fake clock: each is the test advancing it.
    const clock = new FakeClock();
    const bus = new Bus(
      `tcp://127.0.0.1:${early.port}`,
      { waitOnFirstConnect: true, reconnectDelayMs: 10, maxReconnectDelayMs: 20, reconnectJitterMs: 0 },
      clock,
    );
    const pending = bus.open().then(() => bus);
    await until(() => {
      clock.advance(20);
      return early.attempts() >= 3;
    }, 'three attempts refused');
    await early.stop();
    const b = await w.broker({ port: early.port });
    let up = false;
    void pending.then(() => (up = true));
    await until(() => {
      clock.advance(20);
      return up;
    }, 'the next attempt to connect');
    await pending;
    try {
      expect(bus.server).toBe(`tcp://127.0.0.1:${early.port}`);
      const got = new Promise<string>((resolve) => bus.subscribe('x', (m) => resolve(m.string())));
      await bus.flush();
      bus.publish('x', 'up');
      expect(await got).toBe('up');
      expect(b.broker.sessions.size).toBe(1);
    } finally {
      await bus.close();
    }
  });

  it('gives up after maxReconnectAttempts, saying how many', async () => {
    const early = await notYet();
    try {
      const clock = new FakeClock();
      let err: unknown = null;
      const bus = new Bus(
        `tcp://127.0.0.1:${early.port}`,
        { waitOnFirstConnect: true, maxReconnectAttempts: 3, reconnectDelayMs: 10, reconnectJitterMs: 0 },
        clock,
      );
      const opened = bus.open().catch((e: unknown) => (err = e));
      await until(() => {
        clock.advance(20);
        return err !== null;
      }, 'the third attempt to fail');
      await opened;
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as Error).message).toMatch(/^could not connect to any server after 3 attempts/);
      expect(early.attempts()).toBe(3);
    } finally {
      await early.stop();
    }
  });

  it('without it, the first failure rejects at once', async () => {
    const early = await notYet();
    try {
      await expect(connect(`tcp://127.0.0.1:${early.port}`, { reconnectDelayMs: 1 })).rejects.toBeInstanceOf(ConnectionError);
      expect(early.attempts()).toBe(1);
    } finally {
      await early.stop();
    }
  });
});
