/**
 * Keepalive and the handshake timeout of a real broker over real sockets, with its
 * liveness driven by a FakeClock: time moves only when the test says so, and every
 * check waits for a frame or an acknowledgement (raw.roundTrip), never for a sleep.
 * The timers themselves are unit-tested in liveness.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { startBroker, type StartedBroker } from '../../broker/broker.js';
import type { BrokerOptions } from '../../broker/index.js';
import { ERR, FLAG_FATAL, OP, sessionOf, until, useWorld } from './harness.js';

const w = useWorld();
const started: StartedBroker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.close()));
});

/** Keepalive every 100 ms (fake); two unanswered PINGs make a connection stale. */
const KEEPALIVE = { pingIntervalMs: 100, maxPingsOut: 2 };

async function broker(options: BrokerOptions, clock: FakeClock): Promise<StartedBroker> {
  const b = await startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...options }, undefined, clock);
  started.push(b);
  return b;
}

describe('keepalive', () => {
  it('a connection that completed CONNECT but never answers PING is closed with ERR STALE_CONNECTION', async () => {
    const clock = new FakeClock();
    const b = await broker(KEEPALIVE, clock);
    const raw = await w.raw(b);
    raw.answerPings = false;
    await raw.handshake({ name: 'silent' });
    for (let i = 1; i <= 2; i++) {
      clock.advance(100);
      await until(() => raw.count(OP.PING) === i, `keepalive PING ${i}`);
    }
    clock.advance(100);
    await raw.closed;
    expect(raw.count(OP.PING)).toBe(2);
    const errs = raw.errors();
    expect(errs.map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.STALE_CONNECTION, FLAG_FATAL]]);
    expect(errs[0]!.text).toMatch(/stale/);
    await until(() => b.broker.sessions.size === 0, 'the broker to forget the stale connection');
  });

  it('a connection that answers PINGs stays open over many intervals', async () => {
    const clock = new FakeClock();
    const b = await broker(KEEPALIVE, clock);
    const raw = await w.raw(b);
    raw.answerPings = true;
    await raw.handshake();
    for (let i = 1; i <= 6; i++) {
      clock.advance(100);
      await until(() => raw.count(OP.PING) === i, `keepalive PING ${i}`);
      // Our PONG is read before the broker answers this PING: the interval is settled.
      await raw.roundTrip();
    }
    expect(raw.isClosed).toBe(false);
    expect(raw.errors()).toEqual([]);
  });

  it('an SDK client answers the broker PINGs and stays connected over several intervals', async () => {
    const clock = new FakeClock();
    const b = await broker(KEEPALIVE, clock);
    const bus = await w.connect(b.url, { name: 'sdk' });
    let disconnects = 0;
    bus.on('disconnect', () => disconnects++);
    const got: string[] = [];
    bus.subscribe('alive', (m) => got.push(m.string()));
    await bus.flush();
    const session = sessionOf(b, 'sdk');
    for (let i = 1; i <= 6; i++) {
      clock.advance(100);
      expect(session.pingsOut).toBe(1);
      await until(() => session.pingsOut === 0, `the SDK's PONG ${i}`);
    }
    expect(session.rttMs).toBeGreaterThanOrEqual(0);
    expect(disconnects).toBe(0);
    expect(bus.connected).toBe(true);
    expect(session.open).toBe(true);
    bus.publish('alive', 'yes');
    await bus.flush();
    expect(got).toEqual(['yes']);
  });

  it('with pingIntervalMs 0 the broker sends no PINGs', async () => {
    const clock = new FakeClock();
    const b = await broker({ pingIntervalMs: 0 }, clock);
    const raw = await w.raw(b);
    await raw.handshake();
    clock.advance(10 * 60_000);
    await raw.roundTrip();
    expect(raw.count(OP.PING)).toBe(0);
    expect(raw.isClosed).toBe(false);
  });
});

describe('handshake timeout', () => {
  it('a connection that never sends CONNECT is closed after handshakeTimeoutMs with a fatal ERR', async () => {
    const clock = new FakeClock();
    const b = await broker({ handshakeTimeoutMs: 150 }, clock);
    const raw = await w.raw(b);
    await until(() => b.broker.sessions.size === 1, 'the broker to accept the connection');
    clock.advance(149);
    // The close would be synchronous on the broker's side: nothing yet.
    expect(b.broker.counters.protocolErrors).toBe(0);
    clock.advance(1);
    await raw.closed;
    const errs = raw.errors();
    expect(errs.map((e) => [e.code, e.flags & FLAG_FATAL])).toEqual([[ERR.PROTOCOL, FLAG_FATAL]]);
    expect(errs[0]!.text).toMatch(/CONNECT/);
    expect(raw.frames.some((f) => f.op === OP.INFO)).toBe(false);
  });

  it('a connection that sends CONNECT in time is not closed by the handshake timer', async () => {
    const clock = new FakeClock();
    const b = await broker({ handshakeTimeoutMs: 150, pingIntervalMs: 0 }, clock);
    const raw = await w.raw(b);
    await raw.handshake();
    clock.advance(60_000);
    await raw.roundTrip();
    expect(raw.isClosed).toBe(false);
    expect(raw.errors()).toEqual([]);
    expect(b.broker.counters.protocolErrors).toBe(0);
  });
});
